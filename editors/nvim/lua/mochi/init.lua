-- Mochi for Neovim: starts `mochi lsp` with vim.lsp and shows its suggestions as ghost text.
--
--   require("mochi").setup({ cmd = { "mochi", "lsp", "--stdio" } })
--
-- Works on Neovim 0.7+. The plugin is its own inline-completion client: it declares
-- `textDocument.inlineCompletion` so the server answers `textDocument/inlineCompletion`, renders
-- the first item as virtual text (inline on 0.10+, end-of-line + virtual lines before), and
-- falls back to `textDocument/completion` when a server only offers that.
local M = {}

local ns = vim.api.nvim_create_namespace("mochi")

M.defaults = {
  cmd = { "mochi", "lsp", "--stdio" },
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java" },
  root_markers = { ".mochi", ".git" },
  init_options = {}, -- sent as initializationOptions, e.g. { completion = { max_tokens = 48 } }
  settings = {}, -- sent with workspace/didChangeConfiguration
  auto_trigger = true, -- request after typing in insert mode
  debounce_ms = 75, -- client-side wait before asking (the server debounces too)
  keymaps = { accept = "<Tab>", dismiss = "<C-]>" }, -- false disables a mapping
  hl_group = "Comment",
}

M.config = vim.deepcopy(M.defaults)

local state = {
  clients = {}, -- root_dir -> client id
  suggestion = nil, -- { buf, row, col, text, id, tick }
  timer = nil,
  seq = 0,
}

local function find_root(path)
  local dir = vim.fn.fnamemodify(path, ":p:h")
  while dir and dir ~= "" do
    for _, marker in ipairs(M.config.root_markers) do
      if vim.loop.fs_stat(dir .. "/" .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      break
    end
    dir = parent
  end
  return vim.fn.fnamemodify(path, ":p:h")
end

local function client_for(buf)
  for _, client in pairs(vim.lsp.buf_get_clients(buf)) do
    if client.name == "mochi" then
      return client
    end
  end
  return nil
end

--- True when a Mochi server is attached to `buf` and initialized.
function M.is_attached(buf)
  local client = client_for(buf ~= 0 and buf or vim.api.nvim_get_current_buf())
  return client ~= nil and (client.server_capabilities or client.resolved_capabilities) ~= nil
end

--- The suggestion on screen, or nil.
function M.current()
  return state.suggestion
end

function M.clear()
  if state.suggestion and vim.api.nvim_buf_is_valid(state.suggestion.buf) then
    vim.api.nvim_buf_clear_namespace(state.suggestion.buf, ns, 0, -1)
  end
  state.suggestion = nil
end

local function show(buf, row, col, text, id)
  M.clear()
  if text == nil or text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local opts = { virt_text = { { lines[1], M.config.hl_group } }, hl_mode = "combine" }
  opts.virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "eol"
  if #lines > 1 then
    local extra = {}
    for i = 2, #lines do
      table.insert(extra, { { lines[i], M.config.hl_group } })
    end
    opts.virt_lines = extra
  end
  vim.api.nvim_buf_set_extmark(buf, ns, row, col, opts)
  state.suggestion = { buf = buf, row = row, col = col, text = text, id = id, tick = vim.api.nvim_buf_get_changedtick(buf) }
end

local function first_text(result, method)
  if result == nil then
    return nil
  end
  if method == "textDocument/inlineCompletion" then
    local items = result.items or result
    local item = items and items[1]
    if not item then
      return nil
    end
    local text = type(item.insertText) == "table" and item.insertText.value or item.insertText
    local id = item.command and item.command.arguments and item.command.arguments[1]
    return text, id
  end
  local items = result.items or result
  local item = items and items[1]
  if not item or not item.textEdit then
    return nil
  end
  -- The completion item replaces the word before the cursor with word..suggestion.
  local typed_len = item.textEdit.range["end"].character - item.textEdit.range.start.character
  local id = item.command and item.command.arguments and item.command.arguments[1]
  return item.textEdit.newText:sub(typed_len + 1), id
end

--- Ask the server for a suggestion at the cursor (called on typing, or map it yourself).
function M.request()
  local buf = vim.api.nvim_get_current_buf()
  local client = client_for(buf)
  if not client then
    return
  end
  local caps = client.server_capabilities or client.resolved_capabilities or {}
  local method = caps.inlineCompletionProvider and "textDocument/inlineCompletion" or "textDocument/completion"
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  if method == "textDocument/inlineCompletion" then
    params.context = { triggerKind = 2 }
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  state.seq = state.seq + 1
  local seq = state.seq
  client.request(method, params, function(err, result)
    if err or seq ~= state.seq or not vim.api.nvim_buf_is_valid(buf) then
      return
    end
    if vim.api.nvim_buf_get_changedtick(buf) ~= tick then
      return -- the user kept typing; a newer request is on its way
    end
    local text, id = first_text(result, method)
    show(buf, cursor[1] - 1, cursor[2], text, id)
  end, buf)
end

--- True when a suggestion for the current buffer state is on screen.
function M.has_suggestion()
  local s = state.suggestion
  return s ~= nil and s.buf == vim.api.nvim_get_current_buf()
    and vim.api.nvim_buf_get_changedtick(s.buf) == s.tick
end

--- Insert the suggestion on screen; returns false when there is none.
function M.accept()
  local s = state.suggestion
  if not s or s.buf ~= vim.api.nvim_get_current_buf() or vim.api.nvim_buf_get_changedtick(s.buf) ~= s.tick then
    M.clear()
    return false
  end
  M.clear()
  local lines = vim.split(s.text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(s.buf, s.row, s.col, s.row, s.col, lines)
  local last_row = s.row + #lines
  local last_col = (#lines == 1 and s.col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row, last_col })
  local client = client_for(s.buf)
  if client and s.id then
    client.request("workspace/executeCommand", { command = "mochi.accept", arguments = { s.id } },
      function() end, s.buf)
  end
  return true
end

function M.dismiss()
  M.clear()
end

local function schedule_request()
  M.clear()
  if state.timer then
    state.timer:stop()
  else
    state.timer = vim.loop.new_timer()
  end
  state.timer:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.fn.mode() == "i" then
      M.request()
    end
  end))
end

--- Start (or reuse) the server for `buf`'s project and attach it.
function M.attach(buf)
  local name = vim.api.nvim_buf_get_name(buf)
  if name == "" then
    return
  end
  local root = find_root(name)
  local id = state.clients[root]
  if not id or not vim.lsp.get_client_by_id(id) then
    local capabilities = vim.lsp.protocol.make_client_capabilities()
    capabilities.textDocument.inlineCompletion = { dynamicRegistration = false }
    id = vim.lsp.start_client({
      name = "mochi",
      cmd = M.config.cmd,
      root_dir = root,
      workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ":t") } },
      init_options = M.config.init_options,
      settings = M.config.settings,
      capabilities = capabilities,
      on_init = function(client)
        if next(M.config.settings) ~= nil then
          client.notify("workspace/didChangeConfiguration", { settings = M.config.settings })
        end
      end,
    })
    if not id then
      vim.notify("mochi: could not start " .. table.concat(M.config.cmd, " "), vim.log.levels.ERROR)
      return
    end
    state.clients[root] = id
  end
  vim.lsp.buf_attach_client(buf, id)
  if M.config.auto_trigger then
    local group = vim.api.nvim_create_augroup("mochi_buf_" .. buf, { clear = true })
    vim.api.nvim_create_autocmd({ "TextChangedI", "TextChangedP" }, { group = group, buffer = buf, callback = schedule_request })
    vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, buffer = buf, callback = M.clear })
  end
  local keys = M.config.keymaps
  if keys.accept then
    vim.keymap.set("i", keys.accept, function()
      -- Expression mappings may not change text (textlock): accept right after the mapping.
      if M.has_suggestion() then
        vim.schedule(M.accept)
        return ""
      end
      return vim.api.nvim_replace_termcodes(keys.accept, true, false, true)
    end, { buffer = buf, expr = true, desc = "Mochi: accept suggestion" })
  end
  if keys.dismiss then
    vim.keymap.set("i", keys.dismiss, M.dismiss, { buffer = buf, desc = "Mochi: dismiss suggestion" })
  end
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  local group = vim.api.nvim_create_augroup("mochi", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  vim.api.nvim_create_user_command("MochiRequest", M.request, { desc = "Mochi: suggest at the cursor" })
  vim.api.nvim_create_user_command("MochiStatus", function()
    local client = client_for(0)
    if not client then
      print("mochi: not attached")
      return
    end
    client.request("workspace/executeCommand", { command = "mochi.status", arguments = {} }, function(_, res)
      print(vim.inspect(res))
    end, 0)
  end, { desc = "Mochi: server status" })
end

return M
