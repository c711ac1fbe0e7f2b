import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLIENT_ONLY, SETTING_KEYS, serverCommand, toServerSettings } from "../settings";

test("dotted settings become the nested object the server reads", () => {
  const out = toServerSettings({
    "completion.maxTokens": 32,
    "completion.multiline": "never",
    "server.enabledLanguages": ["python"],
    adapters: [{ name: "team", weight: 0.3 }],
  });
  assert.deepEqual(out, {
    completion: { maxTokens: 32, multiline: "never" },
    server: { enabledLanguages: ["python"] },
    adapters: [{ name: "team", weight: 0.3 }],
  });
});

test("unset values and client-only settings are not sent", () => {
  assert.deepEqual(toServerSettings({ command: ["x"], enable: false, "model.path": undefined, "model.preset": null }), {});
});

test("nested objects merge with dotted keys instead of replacing them", () => {
  const out = toServerSettings({ completion: { debounceMs: 0 }, "completion.maxTokens": 8 });
  assert.deepEqual(out, { completion: { debounceMs: 0, maxTokens: 8 } });
});

test("the server command falls back to mochi lsp --stdio when the setting is unusable", () => {
  assert.deepEqual(serverCommand(["/opt/py/bin/mochi", "lsp"]), { command: "/opt/py/bin/mochi", args: ["lsp"] });
  assert.deepEqual(serverCommand([]), { command: "mochi", args: ["lsp", "--stdio"] });
  assert.deepEqual(serverCommand([1, 2]), { command: "mochi", args: ["lsp", "--stdio"] });
});

test("every forwarded setting is declared in package.json and the other way round", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const declared = Object.keys(pkg.contributes.configuration.properties).map((k) => k.replace(/^mochi\./, ""));
  assert.deepEqual([...declared].filter((k) => !CLIENT_ONLY.has(k)).sort(), [...SETTING_KEYS].sort());
});

test("the time budget setting reaches the server as completion.timeBudgetMs (time_budget_ms)", () => {
  assert.ok(SETTING_KEYS.includes("completion.timeBudgetMs"));
  assert.deepEqual(toServerSettings({ "completion.timeBudgetMs": 5000 }), { completion: { timeBudgetMs: 5000 } });
});

test("the enable setting, the toggle command and the status-bar click are declared", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  assert.equal(pkg.contributes.configuration.properties["mochi.enable"].default, true);
  assert.ok(pkg.contributes.commands.some((c: { command: string }) => c.command === "mochi.toggle"));
  const ext = readFileSync(join(__dirname, "..", "..", "src", "extension.ts"), "utf8");
  assert.match(ext, /statusItem\.command = "mochi\.toggle"/);
});
