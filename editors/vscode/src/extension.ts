// VS Code client for plusls, the offline AI language server (`plusls serve`, LSP over stdio).
//
// Inline completion (LSP 3.18 textDocument/inlineCompletion) comes from vscode-languageclient: a built-in feature
// since 10.x, a proposed one in 9.x (registerProposedFeatures() turns those on, and is a no-op where none are left).
// The server's inline items carry `command: plusls.acceptCompletion`; VS Code runs an item's command when the user
// accepts it, and the client forwards it as workspace/executeCommand because the server lists it in
// executeCommandProvider.commands.
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { COMMANDS, Json, LANGUAGES, nestSettings, SECTION, SERVER_COMMANDS } from './settings';

const SEARCH_RESULTS = 20;

/** One plusls.search hit. Lines are 1-based and inclusive (as the workspace index stores them); `path` is
 * relative to the workspace root, or absolute, or a URI. */
interface SearchHit {
  path: string;
  startLine: number;
  endLine: number;
  name: string;
  score: number;
  snippet: string;
}

/** The server's settings object built from the `plusls.*` settings, client-only keys left out. */
export function serverSettings(): { [key: string]: Json } {
  const config = vscode.workspace.getConfiguration(SECTION);
  return nestSettings((key) => config.get(key));
}

function workspaceRoot(): vscode.Uri | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri;
}

/** `plusls.serverPath` with `~` and `${workspaceFolder}` expanded; a relative path with a separator is taken from
 * the workspace root, a bare name is looked up on PATH when spawned. */
export function resolveServerPath(raw: string | undefined): string {
  let command = (raw ?? '').trim() || 'plusls';
  const root = workspaceRoot()?.fsPath;
  if (root) {
    command = command.replace(/\$\{workspaceFolder\}/g, root);
  }
  if (command === '~' || command.startsWith('~/')) {
    command = path.join(os.homedir(), command.slice(1));
  }
  if (!path.isAbsolute(command) && /[\\/]/.test(command) && root) {
    command = path.resolve(root, command);
  }
  return command;
}

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;

function createClient(): LanguageClient {
  const command = resolveServerPath(vscode.workspace.getConfiguration(SECTION).get<string>('serverPath'));
  const serverOptions: ServerOptions = {
    // No `transport`: with TransportKind.stdio the client would append `--stdio` to the arguments.
    run: { command, args: ['serve'] },
    debug: { command, args: ['serve'] },
  };
  let created: LanguageClient | undefined;
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: 'file', language })),
    initializationOptions: () => serverSettings(),
    outputChannel: output,
    // Sends workspace/didChangeConfiguration once the server is up and whenever a `plusls.*` setting changes.
    synchronize: { configurationSection: SECTION },
    middleware: {
      workspace: {
        // The default payload would be every `plusls.*` setting, serverPath included, which the server rejects
        // as unknown: send `{settings: {plusls: <server settings>}}` instead.
        didChangeConfiguration: async () => {
          await created?.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: serverSettings() },
          });
        },
        // Same for a workspace/configuration pull of the whole `plusls` section.
        configuration: async (params, token, next) => {
          const answer = await next(params, token);
          if (!Array.isArray(answer)) {
            return answer;
          }
          return params.items.map((item, i) => (item.section === SECTION ? serverSettings() : answer[i]));
        },
      },
    },
  };
  created = new LanguageClient('plusls', 'plusls', serverOptions, clientOptions);
  created.registerProposedFeatures();
  return created;
}

async function startClient(): Promise<void> {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
    const command = resolveServerPath(vscode.workspace.getConfiguration(SECTION).get<string>('serverPath'));
    // Not awaited: activation must not wait for the user to dismiss the message.
    void vscode.window
      .showErrorMessage(
        `plusls: could not start \`${command} serve\` (${String(error)}). Install plusls in a Python environment ` +
          'and put it on PATH, or set plusls.serverPath.',
        'Open Settings',
        'Show Output',
      )
      .then((choice) => {
        if (choice === 'Open Settings') {
          void vscode.commands.executeCommand('workbench.action.openSettings', 'plusls.serverPath');
        } else if (choice === 'Show Output') {
          output?.show();
        }
      });
  }
}

async function stopClient(): Promise<void> {
  const old = client;
  client = undefined;
  if (old?.needsStop()) {
    try {
      await old.stop();
    } catch (error) {
      output?.warn(`plusls: stopping the server: ${String(error)}`);
    }
  }
}

async function runningClient(): Promise<LanguageClient | undefined> {
  if (!client || client.state === State.Stopped) {
    await startClient();
  }
  if (client?.state !== State.Running) {
    void vscode.window.showWarningMessage('plusls: the server is not running (see the plusls output).');
    return undefined;
  }
  return client;
}

export function resultUri(hitPath: string): vscode.Uri {
  if (/^[a-zA-Z][\w+.-]*:\/\//.test(hitPath)) {
    return vscode.Uri.parse(hitPath);
  }
  if (path.isAbsolute(hitPath)) {
    return vscode.Uri.file(hitPath);
  }
  const root = workspaceRoot();
  return root ? vscode.Uri.joinPath(root, hitPath) : vscode.Uri.file(path.resolve(hitPath));
}

interface HitItem extends vscode.QuickPickItem {
  hit: SearchHit;
}

function toItem(hit: SearchHit): HitItem {
  const firstLine = (hit.snippet ?? '').split('\n').find((line) => line.trim() !== '')?.trim() ?? '';
  return {
    label: hit.name || path.basename(hit.path),
    description: `${vscode.workspace.asRelativePath(resultUri(hit.path))}:${hit.startLine}` +
      (typeof hit.score === 'number' ? `  (${hit.score.toFixed(3)})` : ''),
    detail: firstLine,
    hit,
  };
}

async function openHit(hit: SearchHit): Promise<void> {
  const document = await vscode.workspace.openTextDocument(resultUri(hit.path));
  const last = Math.max(0, document.lineCount - 1);
  const start = Math.min(Math.max(0, (hit.startLine ?? 1) - 1), last);
  const end = Math.min(Math.max(start, (hit.endLine ?? hit.startLine ?? 1) - 1), last);
  const range = new vscode.Range(start, 0, end, document.lineAt(end).text.length);
  const editor = await vscode.window.showTextDocument(document, { selection: new vscode.Range(start, 0, start, 0) });
  editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

async function searchWorkspace(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
  const query = await vscode.window.showInputBox({
    title: 'plusls: Search workspace',
    prompt: 'Describe the code you are looking for, or name a symbol',
    value: selected.includes('\n') ? '' : selected.trim(),
    ignoreFocusOut: true,
  });
  if (!query || !query.trim()) {
    return;
  }
  const running = await runningClient();
  if (!running) {
    return;
  }
  let answer: unknown;
  try {
    answer = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'plusls: searching' },
      () => running.sendRequest(ExecuteCommandRequest.type, {
        command: SERVER_COMMANDS.search,
        arguments: [query.trim(), SEARCH_RESULTS],
      }),
    );
  } catch (error) {
    void vscode.window.showErrorMessage(`plusls: search failed: ${String(error)}`);
    return;
  }
  const hits: SearchHit[] = Array.isArray(answer)
    ? answer
    : Array.isArray((answer as { results?: unknown })?.results)
      ? (answer as { results: SearchHit[] }).results
      : [];
  if (hits.length === 0) {
    void vscode.window.showInformationMessage(`plusls: nothing found for "${query.trim()}".`);
    return;
  }
  const picked = await vscode.window.showQuickPick(hits.map(toItem), {
    title: `plusls: ${hits.length} results for "${query.trim()}"`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked) {
    await openHit(picked.hit);
  }
}

async function reindexWorkspace(): Promise<void> {
  const running = await runningClient();
  if (!running) {
    return;
  }
  try {
    await running.sendRequest(ExecuteCommandRequest.type, { command: SERVER_COMMANDS.reindex, arguments: [] });
    void vscode.window.setStatusBarMessage('plusls: reindexing the workspace', 3000);
  } catch (error) {
    void vscode.window.showErrorMessage(`plusls: reindex failed: ${String(error)}`);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('plusls', { log: true });
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand(COMMANDS.search, searchWorkspace),
    vscode.commands.registerCommand(COMMANDS.reindex, reindexWorkspace),
    vscode.commands.registerCommand(COMMANDS.restart, async () => {
      await stopClient();
      await startClient();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration(`${SECTION}.serverPath`)) {
        await stopClient();
        await startClient();
      }
    }),
    { dispose: () => void stopClient() },
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
