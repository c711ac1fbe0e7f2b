import { strict as assert } from "node:assert";
import { test } from "node:test";
import { StatusModel } from "../status";

test("the status item shows loading, then the model's last latency", () => {
  const m = new StatusModel();
  assert.match(m.update({ state: "loading" }).text, /loading model/);
  const ready = m.update({ state: "ready", detail: "Qwen/Qwen2.5-Coder-0.5B" });
  assert.equal(ready.text, "$(sparkle) Mochi");
  assert.match(ready.tooltip, /model: Qwen\/Qwen2.5-Coder-0.5B/);
  assert.equal(m.update({ state: "ready", latency_ms: 142.4 }).text, "$(sparkle) Mochi 142 ms");
});

test("indexing is shown alongside the model state and cleared when done", () => {
  const m = new StatusModel();
  m.update({ state: "ready", detail: "fake" });
  assert.match(m.update({ state: "indexing" }).text, /indexing/);
  assert.doesNotMatch(m.update({ state: "indexed" }).text, /indexing/);
});

test("a model that failed to load is an error with the reason in the tooltip", () => {
  const view = new StatusModel().update({ state: "failed", detail: "model failed to load: no such file" });
  assert.equal(view.error, true);
  assert.match(view.text, /model failed/);
  assert.match(view.tooltip, /no such file/);
});

test("disabled, missing and not-started states are shown without a spinner", () => {
  assert.equal(new StatusModel().update({ state: "disabled" }).text, "$(circle-slash) Mochi off");
  const missing = new StatusModel().update({ state: "missing", detail: 'Mochi: "mochi" is not on PATH' });
  assert.equal(missing.error, true);
  assert.equal(missing.text, "$(error) Mochi: not installed");
  assert.match(missing.tooltip, /not on PATH/);
  assert.equal(new StatusModel().update({ state: "error", detail: "x" }).error, true);
});
