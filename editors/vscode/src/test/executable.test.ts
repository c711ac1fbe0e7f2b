import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findExecutable, missingExecutableMessage } from "../executable";

function dirWith(name: string, mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), "mochi-exe-"));
  writeFileSync(join(dir, name), "#!/bin/sh\n");
  chmodSync(join(dir, name), mode);
  return dir;
}

test("a command is found on PATH, and not when PATH lacks it", { skip: process.platform === "win32" }, () => {
  const dir = dirWith("mochi", 0o755);
  assert.equal(findExecutable("mochi", { PATH: `/nonexistent:${dir}` }, "linux"), join(dir, "mochi"));
  assert.equal(findExecutable("mochi", { PATH: "/nonexistent" }, "linux"), undefined);
  assert.equal(findExecutable("mochi", {}, "linux"), undefined);
});

test("a file that is not executable does not count", { skip: process.platform === "win32" }, () => {
  const dir = dirWith("mochi", 0o644);
  assert.equal(findExecutable("mochi", { PATH: dir }, "linux"), undefined);
});

test("a configured path is checked as is", { skip: process.platform === "win32" }, () => {
  const dir = dirWith("mochi", 0o755);
  assert.equal(findExecutable(join(dir, "mochi"), { PATH: "" }, "linux"), join(dir, "mochi"));
  assert.equal(findExecutable(join(dir, "nope"), { PATH: dir }, "linux"), undefined);
});

test("the message says what to install and which setting to use", () => {
  const onPath = missingExecutableMessage("mochi", false);
  assert.match(onPath, /"mochi" is not on PATH/);
  assert.match(onPath, /pip install "mochi-code\[torch\]"/);
  assert.match(onPath, /mochi\.command/);
  assert.match(missingExecutableMessage("/venv/bin/mochi", true), /"\/venv\/bin\/mochi" does not exist or is not executable/);
});
