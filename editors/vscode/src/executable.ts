// Finding the server executable before starting it, so a missing `mochi` is a message that says what
// to install instead of the language client's generic error. Pure: no `vscode` import.
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

export const INSTALL_COMMAND = 'pip install "mochi-code[torch]"';

function isExecutableFile(path: string, platform: NodeJS.Platform): boolean {
  try {
    if (!statSync(path).isFile()) {
      return false;
    }
    if (platform !== "win32") {
      accessSync(path, constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The full path `command` resolves to (a path with a separator as is, else the first match on PATH,
 * with PATHEXT on Windows), or undefined when there is none.
 */
export function findExecutable(
  command: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  cwd: string = process.cwd(),
): string | undefined {
  if (!command) {
    return undefined;
  }
  const exts = platform === "win32"
    ? ["", ...(env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean)]
    : [""];
  const hasSeparator = command.includes("/") || (platform === "win32" && command.includes("\\"));
  const candidates = hasSeparator
    ? [isAbsolute(command) ? command : join(cwd, command)]
    : (env.PATH ?? env.Path ?? "").split(platform === "win32" ? ";" : delimiter).filter(Boolean)
        .map((dir) => join(dir, command));
  for (const base of candidates) {
    for (const ext of exts) {
      if (isExecutableFile(base + ext, platform)) {
        return base + ext;
      }
    }
  }
  return undefined;
}

/** What to tell the user when the server command cannot be found. */
export function missingExecutableMessage(command: string, fromSetting: boolean): string {
  const where = command.includes("/") || command.includes("\\")
    ? `"${command}" does not exist or is not executable`
    : `"${command}" is not on PATH`;
  return `Mochi: ${where}, so completions are off. Install Mochi with \`${INSTALL_COMMAND}\` ` +
    "in a Python environment on VS Code's PATH, or set `mochi.command` to its full path " +
    '(e.g. ["/path/to/venv/bin/mochi", "lsp", "--stdio"])' +
    (fromSetting ? " — the current `mochi.command` setting points at it." : ".");
}
