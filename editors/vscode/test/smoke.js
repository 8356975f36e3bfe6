// Smoke test without VS Code: loads out/extension.js with a minimal stand-in for the `vscode` API, so the real
// vscode-languageclient talks to a real server process over stdio, then drives the extension like a user would.
//
//   node test/smoke.js <serverPath> <workspaceFolder> [file-in-workspace]
//
// Prints one JSON report line (commands registered, inline items, quick pick, opened range, messages shown).
// tests/test_editors_vscode.py runs it against a fake pygls server; point it at `plusls serve` to try the real one.
'use strict';
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');

const [serverPath, workspace, file = 'a.py'] = process.argv.slice(2);
const EXT = path.resolve(__dirname, '..');
const report = { commands: [], inlineRegistered: false, inlineItems: null, quickPick: null, opened: null, messages: [] };

// Anything not modelled below is a callable, constructible stub that returns more stubs.
function stub(name) {
  return new Proxy(function () {}, {
    get(target, prop) {
      if (prop === 'prototype') return target.prototype;
      if (prop === 'then') return undefined;
      if (prop === Symbol.iterator) return function* () {};
      if (prop === 'dispose') return () => {};
      return stub(`${name}.${String(prop)}`);
    },
    apply: () => stub(`${name}()`),
    construct: () => stub(`new ${name}`),
  });
}
const partial = (name, object) => new Proxy(object, {
  get: (target, prop) => (prop in target ? target[prop] : prop === 'then' ? undefined : stub(`${name}.${String(prop)}`)),
});

class Disposable {
  constructor(fn) { this.fn = fn; }
  dispose() { if (this.fn) this.fn(); }
  static from(...items) { return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose())); }
}
class EventEmitter {
  constructor() { this.listeners = []; this.event = (cb) => { this.listeners.push(cb); return new Disposable(() => {}); }; }
  fire(e) { this.listeners.forEach((cb) => cb(e)); }
  dispose() {}
}
class Uri {
  constructor(scheme, p) { Object.assign(this, { scheme, path: p, fsPath: p, authority: '', query: '', fragment: '' }); }
  static file(p) { return new Uri('file', p); }
  static parse(s) { return s.startsWith('file://') ? new Uri('file', decodeURIComponent(s.slice(7))) : new Uri(s.split(':')[0], s); }
  static joinPath(u, ...parts) { return new Uri(u.scheme, path.join(u.path, ...parts)); }
  with(change) { return Object.assign(new Uri(this.scheme, this.path), change); }
  toString() { return this.scheme === 'file' ? `file://${this.path}` : this.path; }
  toJSON() { return this.toString(); }
}
class Position { constructor(line, character) { this.line = line; this.character = character; } }
class Range {
  constructor(a, b, c, d) {
    [this.start, this.end] = a instanceof Position ? [a, b] : [new Position(a, b), new Position(c, d)];
  }
}
const noop = () => new Disposable(() => {});

const settings = {};
for (const [key, schema] of Object.entries(require(path.join(EXT, 'package.json')).contributes.configuration.properties)) {
  settings[key] = schema.default;
}
settings['plusls.serverPath'] = serverPath;
const configListeners = [];
function getConfiguration(section) {
  const prefix = section ? `${section}.` : '';
  return partial('configuration', {
    get(key, fallback) {
      const full = prefix + key;
      if (full in settings) return settings[full];
      const nested = {};
      let found = false;
      for (const [k, v] of Object.entries(settings)) {
        if (!k.startsWith(`${full}.`)) continue;
        found = true;
        const parts = k.slice(full.length + 1).split('.');
        let node = nested;
        for (const part of parts.slice(0, -1)) node = node[part] ??= {};
        node[parts[parts.length - 1]] = v;
      }
      return found ? nested : fallback;
    },
    has: (key) => prefix + key in settings,
    inspect: () => undefined,
    update: () => Promise.resolve(),
  });
}
function changeSetting(key, value) {
  settings[key] = value;
  const event = { affectsConfiguration: (s) => key === s || key.startsWith(`${s}.`) };
  configListeners.forEach((cb) => cb(event));
}

const commands = {};
let inlineProvider;
const filePath = path.join(workspace, file);
const lines = fs.readFileSync(filePath, 'utf8').split('\n');
const document = {
  uri: Uri.file(filePath), fileName: filePath, languageId: 'python', version: 1, isClosed: false, isDirty: false,
  lineCount: lines.length, lineAt: (i) => ({ text: lines[i] }), getText: () => lines.join('\n'),
};
const show = (level) => (message) => { report.messages.push([level, message]); return Promise.resolve(undefined); };
const vscode = partial('vscode', {
  version: '1.95.0',
  Uri, EventEmitter, Disposable, Position, Range,
  InlineCompletionItem: class { constructor(insertText, range, command) { Object.assign(this, { insertText, range, command }); } },
  InlineCompletionList: class { constructor(items) { this.items = items; } },
  InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
  ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
  TextEditorRevealType: { Default: 0, InCenter: 1, InCenterIfOutsideViewport: 2, AtTop: 3 },
  UIKind: { Desktop: 1, Web: 2 },
  LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
  env: partial('env', { language: 'en', appName: 'smoke', machineId: 'smoke', sessionId: 'smoke', uiKind: 1 }),
  workspace: partial('workspace', {
    workspaceFolders: [{ uri: Uri.file(workspace), name: path.basename(workspace), index: 0 }],
    textDocuments: [], notebookDocuments: [],
    getConfiguration,
    onDidChangeConfiguration: (cb) => { configListeners.push(cb); return new Disposable(() => {}); },
    createFileSystemWatcher: () => partial('watcher', { onDidCreate: noop, onDidChange: noop, onDidDelete: noop, dispose() {} }),
    openTextDocument: (uri) => Promise.resolve(uri.fsPath === filePath ? document : Promise.reject(new Error(`no ${uri}`))),
    asRelativePath: (u) => path.relative(workspace, u.fsPath || String(u)),
    getWorkspaceFolder: () => undefined,
    ...Object.fromEntries(['onDidOpenTextDocument', 'onDidCloseTextDocument', 'onDidChangeTextDocument',
      'onDidSaveTextDocument', 'onWillSaveTextDocument', 'onDidChangeWorkspaceFolders', 'onDidCreateFiles',
      'onDidRenameFiles', 'onDidDeleteFiles', 'onWillCreateFiles', 'onWillRenameFiles', 'onWillDeleteFiles',
      'onDidOpenNotebookDocument', 'onDidCloseNotebookDocument', 'onDidChangeNotebookDocument',
      'onDidSaveNotebookDocument'].map((name) => [name, noop])),
  }),
  window: partial('window', {
    createOutputChannel: (name) => partial('output', {
      name, append() {}, appendLine() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {}, show() {},
      dispose() {}, logLevel: 3, onDidChangeLogLevel: noop,
    }),
    showErrorMessage: show('error'), showWarningMessage: show('warning'), showInformationMessage: show('info'),
    visibleTextEditors: [], activeTextEditor: undefined, visibleNotebookEditors: [],
    onDidChangeActiveTextEditor: noop, onDidChangeVisibleTextEditors: noop, onDidChangeVisibleNotebookEditors: noop,
    showInputBox: () => Promise.resolve('add two numbers'),
    showQuickPick: (items) => {
      report.quickPick = items.map(({ label, description, detail }) => ({ label, description, detail }));
      return Promise.resolve(items[0]);
    },
    withProgress: (_options, task) => task({ report() {} }, { isCancellationRequested: false, onCancellationRequested: noop }),
    setStatusBarMessage: (message) => { report.messages.push(['status', message]); return new Disposable(() => {}); },
    showTextDocument: (doc, options) => {
      report.opened = { path: doc.uri.fsPath, selection: options.selection };
      return Promise.resolve({ revealRange: (range) => { report.opened.revealed = range; } });
    },
  }),
  commands: partial('commands', {
    registerCommand: (id, fn) => {
      if (commands[id]) throw new Error(`command '${id}' already exists`);
      commands[id] = fn;
      return new Disposable(() => delete commands[id]);
    },
    executeCommand: (id, ...args) => (commands[id] ? Promise.resolve(commands[id](...args)) : Promise.resolve()),
  }),
  languages: partial('languages', {
    match: () => 10,
    registerInlineCompletionItemProvider: (_selector, provider) => {
      report.inlineRegistered = true;
      inlineProvider = provider;
      return new Disposable(() => {});
    },
  }),
});

const load = Module._load;
Module._load = function (request, ...rest) { return request === 'vscode' ? vscode : load.call(this, request, ...rest); };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

(async () => {
  const extension = require(path.join(EXT, 'out', 'extension.js'));
  await extension.activate({ subscriptions: [] });
  report.commands = Object.keys(commands).sort();
  changeSetting('plusls.completion.debounceMs', 90);
  if (inlineProvider) {
    const token = { isCancellationRequested: false, onCancellationRequested: noop };
    const result = await inlineProvider.provideInlineCompletionItems(
      document, new Position(1, 4), { triggerKind: 1, selectedCompletionInfo: undefined }, token);
    const items = result ? result.items || result : [];
    report.inlineItems = items.map(({ insertText, command }) => ({ insertText, command }));
    const accepted = items[0] && items[0].command;
    if (accepted) await vscode.commands.executeCommand(accepted.command, ...(accepted.arguments || []));
  }
  await commands['plusls.searchWorkspace']();
  await commands['plusls.reindexWorkspace']();
  await sleep(200);
  await extension.deactivate();
  console.log(JSON.stringify(report));
  process.exit(0);
})().catch((error) => {
  console.error(error);
  console.log(JSON.stringify({ ...report, error: String(error) }));
  process.exit(1);
});
