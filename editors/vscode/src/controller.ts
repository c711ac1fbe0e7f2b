// The extension's lifecycle without the `vscode` module, so node's test runner can drive it: start
// the server only when enabled and when its executable exists (else an error state and a message
// saying what to install), show its `mochi/status` notifications, stop it when disabled.
import { findExecutable, INSTALL_COMMAND, missingExecutableMessage } from "./executable";
import { serverCommand, Settings } from "./settings";
import { ServerStatus, StatusModel, StatusView } from "./status";

/** The running language client, as far as the controller needs it. */
export interface ServerClient {
  start(): Promise<void>;
  stop(): Promise<void>;
  onStatus(listener: (s: ServerStatus) => void): void;
  /** Called when the server stopped without being asked to (it crashed and was not restarted). */
  onStopped?(listener: () => void): void;
}

/** The editor around the controller (the status item, messages, settings). */
export interface Host {
  enabled(): boolean;
  commandSetting(): unknown;
  /** True when the user set `mochi.command` (the message then points at that setting). */
  commandIsSet(): boolean;
  serverSettings(): Settings;
  createClient(command: string, args: string[], initializationOptions: Settings): ServerClient;
  setStatus(view: StatusView): void;
  /** Show an error with buttons; resolves to the button picked. */
  showError(message: string, ...actions: string[]): Promise<string | undefined>;
  openSettings(query: string): void;
  copyToClipboard(text: string): void;
  findExecutable?(command: string): string | undefined;
}

export const OPEN_SETTINGS = "Open Settings";
export const COPY_INSTALL = "Copy install command";

export class Controller {
  private client: ServerClient | undefined;
  private model = new StatusModel();
  private generation = 0;

  constructor(private readonly host: Host) {}

  get running(): boolean {
    return this.client !== undefined;
  }

  private render(s: ServerStatus): void {
    this.host.setStatus(this.model.update(s));
  }

  /** Start the server (a no-op when disabled or already running). */
  async start(): Promise<void> {
    if (this.client) {
      return;
    }
    const gen = ++this.generation;
    this.model = new StatusModel();
    if (!this.host.enabled()) {
      this.render({ state: "disabled" });
      return;
    }
    const { command, args } = serverCommand(this.host.commandSetting());
    const find = this.host.findExecutable ?? ((c: string) => findExecutable(c));
    if (find(command) === undefined) {
      const message = missingExecutableMessage(command, this.host.commandIsSet());
      this.render({ state: "missing", detail: message });
      void this.host.showError(message, COPY_INSTALL, OPEN_SETTINGS).then((pick) => {
        if (pick === COPY_INSTALL) {
          this.host.copyToClipboard(INSTALL_COMMAND);
        } else if (pick === OPEN_SETTINGS) {
          this.host.openSettings("mochi.command");
        }
      });
      return;
    }
    this.render({ state: "starting" });
    const client = this.host.createClient(command, args, this.host.serverSettings());
    this.client = client;
    client.onStatus((s) => {
      if (gen === this.generation) {
        this.render(s);
      }
    });
    client.onStopped?.(() => {
      if (gen !== this.generation || this.client !== client) {
        return; // we stopped it ourselves
      }
      this.client = undefined;
      this.render({ state: "error", detail: "Mochi: the server stopped (see the Mochi output channel); "
        + "run \"Mochi: Restart language server\" to start it again." });
    });
    try {
      await client.start();
    } catch (err) {
      if (gen !== this.generation) {
        return;
      }
      this.client = undefined;
      const reason = err instanceof Error ? err.message : String(err);
      const message = `Mochi: the server (${[command, ...args].join(" ")}) did not start: ${reason}`;
      this.render({ state: "error", detail: message });
      void this.host.showError(message, OPEN_SETTINGS).then((pick) => {
        if (pick === OPEN_SETTINGS) {
          this.host.openSettings("mochi");
        }
      });
    }
  }

  /** Stop the server; `disabled` shows the off state instead of nothing. */
  async stop(disabled = false): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.generation++;
    if (disabled) {
      this.model = new StatusModel();
      this.render({ state: "disabled" });
    }
    if (client) {
      try {
        await client.stop();
      } catch {
        // a server that already exited: nothing left to stop
      }
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** After `mochi.enable` changed: start or stop to match it. */
  async applyEnabled(): Promise<void> {
    if (this.host.enabled()) {
      await this.start();
    } else {
      await this.stop(true);
    }
  }
}
