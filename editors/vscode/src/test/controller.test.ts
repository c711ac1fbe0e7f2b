import { strict as assert } from "node:assert";
import { test } from "node:test";
import { COPY_INSTALL, Controller, Host, OPEN_SETTINGS, ServerClient } from "../controller";
import { ServerStatus, StatusView } from "../status";

class FakeClient implements ServerClient {
  started = 0;
  stopped = 0;
  listener: ((s: ServerStatus) => void) | undefined;
  constructor(private readonly failWith?: Error) {}
  async start(): Promise<void> {
    this.started++;
    if (this.failWith) {
      throw this.failWith;
    }
  }
  async stop(): Promise<void> {
    this.stopped++;
  }
  onStatus(listener: (s: ServerStatus) => void): void {
    this.listener = listener;
  }
  stoppedListener: (() => void) | undefined;
  onStopped(listener: () => void): void {
    this.stoppedListener = listener;
  }
}

function host(over: Partial<Host> & { exists?: boolean; failStart?: Error; pick?: string } = {}) {
  const seen = { views: [] as StatusView[], errors: [] as string[], clients: [] as FakeClient[],
                 commands: [] as { command: string; args: string[]; init: unknown }[],
                 copied: [] as string[], settings: [] as string[] };
  let enabled = true;
  const h: Host = {
    enabled: () => enabled,
    commandSetting: () => undefined,
    commandIsSet: () => false,
    serverSettings: () => ({ completion: { timeBudgetMs: 800 } }),
    createClient: (command, args, init) => {
      seen.commands.push({ command, args, init });
      const c = new FakeClient(over.failStart);
      seen.clients.push(c);
      return c;
    },
    setStatus: (v) => seen.views.push(v),
    showError: async (message) => {
      seen.errors.push(message);
      return over.pick;
    },
    openSettings: (q) => seen.settings.push(q),
    copyToClipboard: (t) => seen.copied.push(t),
    findExecutable: (c) => (over.exists === false ? undefined : `/usr/bin/${c}`),
    ...over,
  };
  return { h, seen, setEnabled: (v: boolean) => { enabled = v; } };
}

const last = (views: StatusView[]) => views[views.length - 1];
const settle = () => new Promise((resolve) => setImmediate(resolve));

test("a missing mochi executable is an error state and a message saying what to install; no client starts", async () => {
  const { h, seen } = host({ exists: false, pick: COPY_INSTALL });
  const ctl = new Controller(h);
  await ctl.start();
  await settle();
  assert.equal(seen.clients.length, 0);
  assert.equal(ctl.running, false);
  assert.equal(last(seen.views).error, true);
  assert.match(last(seen.views).text, /not installed/);
  assert.doesNotMatch(last(seen.views).text, /loading~spin/);
  assert.equal(seen.errors.length, 1);
  assert.match(seen.errors[0], /pip install "mochi-code\[torch\]"/);
  assert.match(seen.errors[0], /mochi\.command/);
  assert.deepEqual(seen.copied, ['pip install "mochi-code[torch]"']);
});

test("the message's settings button opens the command setting", async () => {
  const { h, seen } = host({ exists: false, pick: OPEN_SETTINGS });
  await new Controller(h).start();
  await settle();
  assert.deepEqual(seen.settings, ["mochi.command"]);
});

test("with the executable found the server starts with the settings, and its status notifications show", async () => {
  const { h, seen } = host();
  const ctl = new Controller(h);
  await ctl.start();
  assert.equal(seen.clients.length, 1);
  assert.deepEqual(seen.commands[0], { command: "mochi", args: ["lsp", "--stdio"],
                                       init: { completion: { timeBudgetMs: 800 } } });
  seen.clients[0].listener?.({ state: "loading" });
  assert.match(last(seen.views).text, /loading model/);
  seen.clients[0].listener?.({ state: "ready", latency_ms: 90 });
  assert.equal(last(seen.views).text, "$(sparkle) Mochi 90 ms");
});

test("a server that fails to start is an error state with the reason, not an endless spinner", async () => {
  const { h, seen } = host({ failStart: new Error("spawn EACCES") });
  const ctl = new Controller(h);
  await ctl.start();
  await settle();
  assert.equal(ctl.running, false);
  assert.equal(last(seen.views).error, true);
  assert.match(last(seen.views).tooltip, /spawn EACCES/);
  assert.match(seen.errors[0], /did not start: spawn EACCES/);
});

test("disabling stops the server and shows Mochi off; enabling starts it again", async () => {
  const { h, seen, setEnabled } = host();
  const ctl = new Controller(h);
  await ctl.start();
  setEnabled(false);
  await ctl.applyEnabled();
  assert.equal(seen.clients[0].stopped, 1);
  assert.equal(ctl.running, false);
  assert.equal(last(seen.views).text, "$(circle-slash) Mochi off");
  assert.equal(last(seen.views).error, false);
  // A late notification from the stopped server does not overwrite the off state.
  seen.clients[0].listener?.({ state: "ready" });
  assert.equal(last(seen.views).text, "$(circle-slash) Mochi off");
  setEnabled(true);
  await ctl.applyEnabled();
  assert.equal(seen.clients.length, 2);
  assert.equal(ctl.running, true);
});

test("starting while disabled starts nothing", async () => {
  const { h, seen, setEnabled } = host();
  setEnabled(false);
  await new Controller(h).start();
  assert.equal(seen.clients.length, 0);
  assert.match(last(seen.views).text, /Mochi off/);
});

test("a server that stops by itself is an error state, one that we stop is not", async () => {
  const { h, seen, setEnabled } = host();
  const ctl = new Controller(h);
  await ctl.start();
  seen.clients[0].stoppedListener?.();
  assert.equal(ctl.running, false);
  assert.equal(last(seen.views).error, true);
  assert.match(last(seen.views).tooltip, /server stopped/);
  await ctl.restart();
  setEnabled(false);
  await ctl.applyEnabled();
  seen.clients[1].stoppedListener?.();
  assert.equal(last(seen.views).text, "$(circle-slash) Mochi off");
});
