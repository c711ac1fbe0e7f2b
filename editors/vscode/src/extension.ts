// VS Code entry point: starts `mochi lsp` with vscode-languageclient (inline completions via the
// LSP 3.18 feature), forwards the `mochi.*` settings, and shows a status-bar item that toggles
// Mochi on and off. The lifecycle (enabled? executable found? started?) lives in controller.ts.
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions, State } from "vscode-languageclient/node";
import { Controller, ServerClient } from "./controller";
import { SETTING_KEYS, toServerSettings } from "./settings";
import { ServerStatus } from "./status";

let controller: Controller | undefined;
let client: LanguageClient | undefined;

const LANGUAGES = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java"];

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration("mochi");
}

function userValue<T>(key: string): T | undefined {
  const inspected = config().inspect<T>(key);
  return inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
}

function readSettings(): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    // Send only what the user set, so .mochi/config.toml keeps its say over defaults.
    const value = userValue(key);
    if (value !== undefined) {
      flat[key] = value;
    }
  }
  return toServerSettings(flat);
}

function languageClient(command: string, args: string[], initializationOptions: Record<string, unknown>): ServerClient {
  const serverOptions: ServerOptions = { command, args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    initializationOptions,
    outputChannelName: "Mochi",
  };
  const lc = new LanguageClient("mochi", "Mochi", serverOptions, clientOptions);
  lc.registerProposedFeatures(); // textDocument/inlineCompletion in vscode-languageclient 9
  client = lc;
  return {
    start: () => lc.start(),
    stop: async () => {
      if (client === lc) {
        client = undefined;
      }
      await lc.stop();
    },
    onStatus: (listener: (s: ServerStatus) => void) => {
      lc.onNotification("mochi/status", listener);
    },
    onStopped: (listener: () => void) => {
      lc.onDidChangeState((e) => {
        if (e.oldState === State.Running && e.newState === State.Stopped) {
          listener();
        }
      });
    },
  };
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "mochi.toggle";
  statusItem.show();
  context.subscriptions.push(statusItem);

  controller = new Controller({
    enabled: () => config().get<boolean>("enable", true),
    commandSetting: () => config().get("command"),
    commandIsSet: () => userValue("command") !== undefined,
    serverSettings: readSettings,
    createClient: languageClient,
    setStatus: (view) => {
      statusItem.text = view.text;
      statusItem.tooltip = view.tooltip;
      statusItem.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
    },
    showError: (message, ...actions) => Promise.resolve(vscode.window.showErrorMessage(message, ...actions)),
    openSettings: (query) => void vscode.commands.executeCommand("workbench.action.openSettings", query),
    copyToClipboard: (text) => void vscode.env.clipboard.writeText(text),
  });
  const ctl = controller;

  context.subscriptions.push(
    vscode.commands.registerCommand("mochi.restart", () => ctl.restart()),
    vscode.commands.registerCommand("mochi.toggle", async () => {
      const inspected = config().inspect<boolean>("enable");
      // Flip it where it is decided: a workspace value wins over the user setting.
      const target = inspected?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
      await config().update("enable", !config().get<boolean>("enable", true), target);
    }),
    vscode.commands.registerCommand("mochi.showStatus", async () => {
      if (!client) {
        void vscode.window.showInformationMessage("Mochi is not running (see the status bar).");
        return;
      }
      const status = await client.sendRequest("workspace/executeCommand", { command: "mochi.status", arguments: [] });
      const doc = await vscode.workspace.openTextDocument({ language: "json", content: JSON.stringify(status, null, 2) });
      await vscode.window.showTextDocument(doc, { preview: true });
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("mochi")) {
        return;
      }
      if (e.affectsConfiguration("mochi.enable")) {
        await ctl.applyEnabled();
        return;
      }
      if (e.affectsConfiguration("mochi.command")) {
        await ctl.restart();
        return;
      }
      await client?.sendNotification("workspace/didChangeConfiguration", { settings: { mochi: readSettings() } });
    }),
  );
  await ctl.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
}
