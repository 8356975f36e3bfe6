-- Driven by tests/test_neovim_e2e.py: a real headless Neovim with the shipped editors/neovim/plusls.lua config
-- starts `plusls serve`, opens a file, and records what the server answered to inline completion, completion,
-- hover and workspace/symbol. Results go to $PLUSLS_E2E_OUT as JSON.
local env = vim.env
local out = { log = {} }
local function note(msg) table.insert(out.log, msg) end
local function finish()
  local f = assert(io.open(env.PLUSLS_E2E_OUT, 'w'))
  f:write(vim.json.encode(out))
  f:close()
  vim.cmd('qa!')
end

local ok, err = pcall(function()
  vim.cmd('filetype on')
  package.path = env.PLUSLS_E2E_REPO .. '/editors/neovim/?.lua;' .. package.path
  require('plusls').setup({ cmd = vim.json.decode(env.PLUSLS_E2E_CMD), settings = vim.json.decode(env.PLUSLS_E2E_SETTINGS) })
  vim.cmd('edit ' .. vim.fn.fnameescape(env.PLUSLS_E2E_FILE))
  local function client() return vim.lsp.get_clients({ bufnr = 0, name = 'plusls' })[1] end
  assert(vim.wait(60000, function() return client() ~= nil and client().initialized end, 50), 'plusls did not attach')
  local c = client()
  out.attached = true
  out.filetype = vim.bo.filetype
  local uri = vim.uri_from_bufnr(0)

  -- The user types the start of fibonacci's body: the buffer now ends in "    a, b =".
  local typed = vim.json.decode(env.PLUSLS_E2E_TYPED)
  vim.api.nvim_buf_set_lines(0, 0, -1, false, typed)
  local line = #typed - 1
  local col = #typed[#typed]
  vim.api.nvim_win_set_cursor(0, { line + 1, col })
  vim.wait(400) -- Neovim sends didChange after its debounce (150 ms)
  local pos = { line = line, character = col }

  local r = c:request_sync('textDocument/inlineCompletion',
    { textDocument = { uri = uri }, position = pos, context = { triggerKind = 2 } }, 60000, 0)
  out.inline = r and (r.result or { error = r.err }) or { error = 'timeout' }
  r = c:request_sync('textDocument/completion', { textDocument = { uri = uri }, position = pos }, 60000, 0)
  out.completion = r and (r.result or { error = r.err }) or { error = 'timeout' }

  -- Hover inside is_prime's body (the file on disk is shown again for that).
  vim.api.nvim_buf_set_lines(0, 0, -1, false, vim.fn.readfile(env.PLUSLS_E2E_FILE))
  vim.wait(400)
  local hover_line = vim.fn.search('return n > 1') - 1
  r = c:request_sync('textDocument/hover',
    { textDocument = { uri = uri }, position = { line = hover_line, character = 8 } }, 60000, 0)
  out.hover = r and (r.result or { error = r.err }) or { error = 'timeout' }

  -- Background indexing started on initialize; symbols arrive once the file is indexed.
  local symbols
  vim.wait(60000, function()
    local s = c:request_sync('workspace/symbol', { query = 'is_prime' }, 10000, 0)
    symbols = s and s.result
    return symbols ~= nil and #symbols > 0
  end, 200)
  out.symbols = symbols or {}
  -- The shipped :PluslsSearch command fills the quickfix list.
  vim.cmd('PluslsSearch is_prime')
  vim.wait(30000, function() return #vim.fn.getqflist() > 0 end, 100)
  local qf = vim.fn.getqflist()
  out.quickfix_first = qf[1] and { text = qf[1].text, lnum = qf[1].lnum, file = vim.fn.bufname(qf[1].bufnr) } or vim.NIL
end)
if not ok then out.error = tostring(err) end
finish()
