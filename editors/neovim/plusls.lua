-- plusls for Neovim 0.11+ (vim.lsp.config / vim.lsp.enable; no plugins needed).
--
-- Install: copy this file to ~/.config/nvim/lua/plusls.lua and put in init.lua
--
--   require('plusls').setup()                 -- or setup({ cmd = {...}, settings = {...}, keys = {...} })
--
-- Neovim 0.12+: inline completion (ghost text, textDocument/inlineCompletion) with
--   <Tab> accept (falls back to a real <Tab> when nothing is shown), <M-]> / <M-[> next / previous candidate.
-- Neovim 0.11: the same suggestions through textDocument/completion in the popup menu (vim.lsp.completion).
-- Both: K hover, gra "Generate docstring", :lua vim.lsp.buf.workspace_symbol() semantic symbols,
--   :PluslsSearch {query} (results in the quickfix list), :PluslsReindex.
local M = {}

--- Server settings, sent as initializationOptions and as workspace/didChangeConfiguration {settings = {plusls = ...}}.
--- Leave a key out to keep the server's default; use vim.NIL for JSON null.
M.settings = {
  -- models = {  -- an empty Lua table would go out as a JSON list: keep this commented out unless you set a key
  --   dir = '~/.cache/plusls/models', -- where the default models were exported ($PLUSLS_MODELS_DIR)
  --   completion = 'auto', -- or 'qwen2.5-coder-1.5b', 'qwen2.5-coder-0.5b', or '/path/to/exported/causal-lm'
  --   docstring = '/path/to/seq2seq', embedding = '/path/to/embedding',
  --   draft = '/path/to/smaller/causal-lm', -- drafts for the completion model (default: the 0.5B for the 1.5B on CUDA)
  --   summaries = 'completion', -- or 'docstring': who writes hover summaries (default: the completion model in chat form)
  -- },
  providers = 'auto', -- or { 'CUDAExecutionProvider', 'CPUExecutionProvider' }
  completion = {
    enabled = true,
    debounceMs = 60,
    maxNewTokens = 48,
    contextTokens = 0, -- from the prompt speed measured on this machine: what a cold prompt reads in ~4 s
    deadlineMs = 2000,
    promptDeadlineMs = 10000,
    retrieval = true,
    repoLayout = false,
    multiline = true,
    suffixTokens = 64,
    prefixReuse = true,
    promptLookup = true,
    -- lineChoice = true, -- or false; left out: on for the default 0.5B, where it measured better
  },
  hover = { enabled = true },
  docstring = { enabled = true },
  search = { enabled = true, indexOnStart = true, maxFileBytes = 1000000 },
  telemetry = { enabled = true },
}

M.defaults = {
  cmd = { 'plusls', 'serve' }, -- e.g. { vim.fn.expand('~/src/plusls/.venv/bin/plusls'), 'serve' }
  filetypes = { 'python', 'javascript', 'typescript', 'go', 'rust', 'java' },
  root_markers = { '.git', 'pyproject.toml', 'setup.py', 'package.json', 'go.mod', 'Cargo.toml', 'pom.xml', 'build.gradle' },
  keys = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>' }, -- set a key to false to leave it unmapped
  search_results = 20,
}

local function plusls_client(bufnr)
  return vim.lsp.get_clients({ name = 'plusls', bufnr = bufnr })[1] or vim.lsp.get_clients({ name = 'plusls' })[1]
end

local function on_attach(client, bufnr, opts)
  local keys = opts.keys
  local function map(lhs, rhs, desc, extra)
    if lhs then
      vim.keymap.set('i', lhs, rhs, vim.tbl_extend('force', { buffer = bufnr, desc = 'plusls: ' .. desc }, extra or {}))
    end
  end
  if vim.lsp.inline_completion and client:supports_method('textDocument/inlineCompletion', bufnr) then
    -- 0.12+: ghost text. get() inserts the shown candidate (and runs its plusls.acceptCompletion command), or returns
    -- false when there is none, so the key keeps its usual meaning.
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    map(keys.accept, function()
      if not vim.lsp.inline_completion.get() then
        return keys.accept
      end
    end, 'accept inline completion', { expr = true, replace_keycodes = true })
    map(keys.next, function() vim.lsp.inline_completion.select({ count = 1 }) end, 'next inline completion')
    map(keys.prev, function() vim.lsp.inline_completion.select({ count = -1 }) end, 'previous inline completion')
  elseif client:supports_method('textDocument/completion', bufnr) then
    -- 0.11: the suggestions come as ordinary completion items in the popup menu.
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
  -- Where the cursor rests or insert mode starts, plusls reads the prompt ahead (its answer: no highlights).
  vim.api.nvim_create_autocmd({ 'CursorHold', 'InsertEnter' }, {
    buffer = bufnr,
    group = vim.api.nvim_create_augroup('plusls-warm-' .. bufnr, { clear = true }),
    callback = function()
      local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
      client:request('textDocument/documentHighlight', params, function() end, bufnr)
    end,
  })
end

local function first_line(text)
  for line in vim.gsplit(text or '', '\n', { plain = true }) do
    if line:match('%S') then
      return vim.trim(line)
    end
  end
  return ''
end

--- plusls.search through workspace/executeCommand; the hits go to the quickfix list.
function M.search(query, opts)
  opts = opts or M.defaults
  local client = plusls_client(0)
  if not client then
    vim.notify('plusls is not running', vim.log.levels.WARN)
    return
  end
  local params = { command = 'plusls.search', arguments = { query, opts.search_results or 20 } }
  client:request('workspace/executeCommand', params, function(err, hits)
    if err then
      vim.notify('plusls.search: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    hits = type(hits) == 'table' and (hits.results or hits) or {}
    local root = client.root_dir or vim.fn.getcwd()
    local items = {}
    for _, hit in ipairs(hits) do
      local path = hit.path
      if path:match('^file://') then
        path = vim.uri_to_fname(path)
      elseif not vim.startswith(path, '/') and not path:match('^%a:[/\\]') then
        path = vim.fs.joinpath(root, path)
      end
      -- startLine / endLine are 1-based and inclusive, as the workspace index stores them.
      items[#items + 1] = {
        filename = path,
        lnum = hit.startLine,
        end_lnum = hit.endLine,
        col = 1,
        text = ('%s  %s  (%.3f)'):format(hit.name or '', first_line(hit.snippet), tonumber(hit.score) or 0),
      }
    end
    vim.fn.setqflist({}, ' ', { title = 'plusls: ' .. query, items = items })
    if #items == 0 then
      vim.notify('plusls: nothing found for ' .. query)
    else
      vim.cmd('botright copen')
    end
  end)
end

function M.reindex()
  local client = plusls_client(0)
  if not client then
    vim.notify('plusls is not running', vim.log.levels.WARN)
    return
  end
  client:request('workspace/executeCommand', { command = 'plusls.reindex', arguments = {} }, function(err)
    if err then
      vim.notify('plusls.reindex: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    end
  end)
end

function M.setup(user)
  user = user or {}
  -- Shallow merge: lists (cmd, filetypes, root_markers) replace the defaults instead of merging by index.
  local opts = vim.tbl_extend('force', M.defaults, user)
  opts.keys = vim.tbl_extend('force', M.defaults.keys, user.keys or {})
  local settings = vim.tbl_deep_extend('force', M.settings, user.settings or {})
  vim.lsp.config('plusls', {
    cmd = opts.cmd,
    filetypes = opts.filetypes,
    root_markers = opts.root_markers,
    init_options = settings,
    settings = { plusls = settings },
  })
  vim.lsp.enable('plusls')

  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('plusls', { clear = true }),
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == 'plusls' then
        on_attach(client, args.buf, opts)
      end
    end,
  })
  vim.api.nvim_create_user_command('PluslsSearch', function(cmd)
    M.search(cmd.args, opts)
  end, { nargs = '+', desc = 'plusls: semantic search of the workspace (quickfix list)' })
  vim.api.nvim_create_user_command('PluslsReindex', M.reindex, { desc = 'plusls: reindex the workspace' })
end

return M
