// VS Code entry point: starts `mochi lsp` with vscode-languageclient (inline completions via the
// LSP 3.18 feature), forwards the `mochi.*` settings, and shows a status-bar item.
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import { SETTING_KEYS, serverCommand, toServerSettings } from "./settings";
import { ServerStatus, StatusModel } from "./status";

let client: LanguageClient | undefined;

const LANGUAGES = ["python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java"];

function readSettings(): Record<string, unknown> {
  const cfg = vscode.workspace.getConfiguration("mochi");
  const flat: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const inspected = cfg.inspect(key);
    // Send only what the user set, so .mochi/config.toml keeps its say over defaults.
    const value = inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
    if (value !== undefined) {
      flat[key] = value;
    }
  }
  return toServerSettings(flat);
}

async function start(context: vscode.ExtensionContext, statusItem: vscode.StatusBarItem): Promise<void> {
  const { command, args } = serverCommand(vscode.workspace.getConfiguration("mochi").get("command"));
  const serverOptions: ServerOptions = { command, args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    initializationOptions: readSettings(),
    outputChannelName: "Mochi",
  };
  client = new LanguageClient("mochi", "Mochi", serverOptions, clientOptions);
  client.registerProposedFeatures(); // textDocument/inlineCompletion in vscode-languageclient 9
  const model = new StatusModel();
  const render = (s: ServerStatus) => {
    const view = model.update(s);
    statusItem.text = view.text;
    statusItem.tooltip = view.tooltip;
    statusItem.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  };
  render({});
  context.subscriptions.push(client.onNotification("mochi/status", render));
  await client.start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "mochi.showStatus";
  statusItem.show();
  context.subscriptions.push(statusItem);

  context.subscriptions.push(
    vscode.commands.registerCommand("mochi.restart", async () => {
      await client?.stop();
      await start(context, statusItem);
    }),
    vscode.commands.registerCommand("mochi.showStatus", async () => {
      const status = await client?.sendRequest("workspace/executeCommand", { command: "mochi.status", arguments: [] });
      const doc = await vscode.workspace.openTextDocument({ language: "json", content: JSON.stringify(status, null, 2) });
      await vscode.window.showTextDocument(doc, { preview: true });
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("mochi")) {
        return;
      }
      if (e.affectsConfiguration("mochi.command")) {
        await vscode.commands.executeCommand("mochi.restart");
        return;
      }
      await client?.sendNotification("workspace/didChangeConfiguration", { settings: { mochi: readSettings() } });
    }),
  );
  await start(context, statusItem);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
