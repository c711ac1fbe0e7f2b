// Turns the flat `mochi.*` VS Code settings into the nested object the server reads
// (initializationOptions and workspace/didChangeConfiguration). Pure: no `vscode` import.

export type Settings = Record<string, unknown>;

/** Settings that configure the extension itself, not the server. */
export const CLIENT_ONLY = new Set(["command", "enable"]);

/**
 * Build `{ completion: { maxTokens: 64 }, server: {...}, model: {...}, adapters: [...] }` from a
 * flat map of dotted keys (`completion.maxTokens`) or an already nested object. Values that are
 * `undefined` or `null` are left out, so the server keeps the project's `.mochi/config.toml` value.
 */
export function toServerSettings(flat: Settings): Settings {
  const out: Settings = {};
  for (const [key, value] of Object.entries(flat)) {
    if (value === undefined || value === null || CLIENT_ONLY.has(key)) {
      continue;
    }
    const parts = key.split(".");
    let node: Settings = out;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (typeof next !== "object" || next === null || Array.isArray(next)) {
        node[part] = {};
      }
      node = node[part] as Settings;
    }
    const leaf = parts[parts.length - 1];
    if (isPlainObject(value) && isPlainObject(node[leaf])) {
      node[leaf] = { ...(node[leaf] as Settings), ...toServerSettings(value as Settings) };
    } else {
      node[leaf] = isPlainObject(value) ? toServerSettings(value as Settings) : value;
    }
  }
  return out;
}

function isPlainObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The command line that starts the server, with a sane default and validation. */
export function serverCommand(setting: unknown): { command: string; args: string[] } {
  const fallback = ["mochi", "lsp", "--stdio"];
  const parts = Array.isArray(setting) && setting.length > 0 && setting.every((p) => typeof p === "string")
    ? (setting as string[])
    : fallback;
  return { command: parts[0], args: parts.slice(1) };
}

/** The keys of `package.json` contributes.configuration, without the `mochi.` prefix. */
export const SETTING_KEYS = [
  "model.preset", "model.path", "model.backend", "adapters",
  "completion.maxTokens", "completion.multiline", "completion.debounceMs", "completion.timeBudgetMs",
  "server.enabledLanguages", "server.indexOnStart", "server.logUsage",
];
