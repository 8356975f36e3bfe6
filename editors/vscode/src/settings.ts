// The extension's contract with the plusls server, kept free of `vscode` imports so that tests can load the
// compiled module with plain node (tests/test_editors_vscode.py).

export const SECTION = 'plusls';
export const LANGUAGES = ['python', 'javascript', 'typescript', 'go', 'rust', 'java'];

/** Settings the server reads, as dotted keys under `plusls.` (package.json contributes exactly these, plus the
 * client-only ones below). They travel as initializationOptions and in workspace/didChangeConfiguration. */
export const SERVER_SETTING_KEYS = [
  'models.dir',
  'models.completion',
  'models.docstring',
  'models.embedding',
  'models.draft',
  'models.summaries',
  'providers',
  'completion.enabled',
  'completion.debounceMs',
  'completion.maxNewTokens',
  'completion.contextTokens',
  'completion.suffixTokens',
  'completion.deadlineMs',
  'completion.promptDeadlineMs',
  'completion.retrieval',
  'completion.repoLayout',
  'completion.multiline',
  'completion.prefixReuse',
  'completion.promptLookup',
  'completion.lineChoice',
  'remote.api',
  'remote.model',
  'remote.template',
  'remote.apiKeyEnv',
  'remote.verifyTls',
  'remote.timeoutMs',
  'remote.fallback',
  'remote.contextTokens',
  'hover.enabled',
  'docstring.enabled',
  'search.enabled',
  'search.indexOnStart',
  'search.maxFileBytes',
  'search.store',
  'search.repo',
  'search.embedUrl',
  'search.embedModel',
  'search.embedKeyEnv',
  'search.rerank',
  'telemetry.enabled',
] as const;

/** Settings only this extension reads; never sent to the server (it rejects unknown keys). */
export const CLIENT_SETTING_KEYS = ['serverPath', 'trace.server'] as const;

/** Commands this extension contributes. Their ids differ from the server's: vscode-languageclient registers a VS Code
 * command for each id in the server's executeCommandProvider.commands, and a second registration would fail. */
export const COMMANDS = {
  search: 'plusls.searchWorkspace',
  reindex: 'plusls.reindexWorkspace',
  restart: 'plusls.restartServer',
} as const;

/** workspace/executeCommand commands the server provides. */
export const SERVER_COMMANDS = {
  search: 'plusls.search', // [query: string, k?: number] -> SearchHit[]
  reindex: 'plusls.reindex', // no arguments
  accept: 'plusls.acceptCompletion', // [{id, accepted}], attached to inline completion items by the server
} as const;

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The server's settings object: nested camelCase JSON, one leaf per SERVER_SETTING_KEYS entry, read with `get`
 * (a dotted key -> its value; an undefined value is left out, so the server keeps its default). Values are
 * deep-copied to plain JSON. */
export function nestSettings(get: (key: string) => unknown): { [key: string]: Json } {
  const result: { [key: string]: Json } = {};
  for (const key of SERVER_SETTING_KEYS) {
    const value = get(key);
    if (value === undefined) {
      continue;
    }
    const parts = key.split('.');
    let node = result;
    for (const part of parts.slice(0, -1)) {
      node = (node[part] ??= {}) as { [key: string]: Json };
    }
    node[parts[parts.length - 1]] = JSON.parse(JSON.stringify(value)) as Json;
  }
  return result;
}
