-- Mochi for Neovim: starts `mochi lsp` with vim.lsp and shows its suggestions as ghost text.
--
--   require("mochi").setup({ cmd = { "mochi", "lsp", "--stdio" } })
--
-- Works on Neovim 0.7+. The plugin is its own inline-completion client: it declares
-- `textDocument.inlineCompletion` so the server answers `textDocument/inlineCompletion`, renders
-- the first item as virtual text, and falls back to `textDocument/completion` when a server only
-- offers that. On 0.10+ the ghost text is inline at the cursor. Before 0.10 virtual text can only
-- go at the end of the line, which would read as appended to the line when the cursor is mid-line:
-- there, a suggestion at the end of the line is end-of-line ghost text, and one in the middle of a
-- line is shown in a small floating window under the cursor instead.
--
-- The server's `mochi/status` notifications (model loading/ready/failed, indexing, latency) feed
-- `require("mochi").statusline()` for your statusline, a `User MochiStatus` autocmd, and one
-- `vim.notify` when the model starts loading and one when it is ready or failed.
local M = {}

local ns = vim.api.nvim_create_namespace("mochi")
local HAS_INLINE = vim.fn.has("nvim-0.10") == 1

M.defaults = {
  cmd = { "mochi", "lsp", "--stdio" },
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "java" },
  root_markers = { ".mochi", ".git" },
  init_options = {}, -- sent as initializationOptions, e.g. { completion = { max_tokens = 48 } }
  settings = {}, -- sent with workspace/didChangeConfiguration
  auto_trigger = true, -- request after typing in insert mode
  debounce_ms = 75, -- client-side wait before asking (the server debounces too)
  -- accept: the insert-mode key that accepts a suggestion; with no suggestion on screen it does what
  -- it did before (the mapping it replaced, e.g. nvim-cmp's or a snippet plugin's, else the key itself).
  keymaps = { accept = "<Tab>", dismiss = "<C-]>" }, -- false disables a mapping
  hl_group = "Comment",
  notify = true, -- vim.notify once when the model starts loading and once when it is ready or failed
}

M.config = vim.deepcopy(M.defaults)

local state = {
  clients = {}, -- root_dir -> client id
  suggestion = nil, -- { buf, row, col, text, id, tick }
  timer = nil,
  seq = 0,
  status = {}, -- client id -> { engine, detail, model, latency_ms, indexing, notified }
  float = nil, -- { win, buf } of the mid-line preview (Neovim < 0.10)
  fallbacks = {}, -- buf -> the buffer-local insert mapping the accept key replaced
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
  -- vim.lsp.get_clients (0.10+) replaces the deprecated buf_get_clients.
  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf }) or vim.lsp.buf_get_clients(buf)
  for _, client in pairs(clients) do
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

local function close_float()
  local f = state.float
  state.float = nil
  if f then
    if vim.api.nvim_win_is_valid(f.win) then
      pcall(vim.api.nvim_win_close, f.win, true)
    end
    if vim.api.nvim_buf_is_valid(f.buf) then
      pcall(vim.api.nvim_buf_delete, f.buf, { force = true })
    end
  end
end

function M.clear()
  if state.suggestion and vim.api.nvim_buf_is_valid(state.suggestion.buf) then
    vim.api.nvim_buf_clear_namespace(state.suggestion.buf, ns, 0, -1)
  end
  close_float()
  state.suggestion = nil
end

--- The floating preview of a mid-line suggestion (Neovim < 0.10), or nil.
function M.preview_window()
  return state.float and vim.api.nvim_win_is_valid(state.float.win) and state.float.win or nil
end

local function show_float(lines)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  local width = 1
  for _, l in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(l))
  end
  local win = vim.api.nvim_open_win(buf, false, {
    relative = "cursor", row = 1, col = 0, width = math.min(width, math.max(20, vim.o.columns - 4)),
    height = math.min(#lines, 10), style = "minimal", border = "single", focusable = false, noautocmd = true,
  })
  vim.api.nvim_win_set_option(win, "winhighlight", "Normal:" .. M.config.hl_group)
  state.float = { win = win, buf = buf }
end

local function show(buf, row, col, text, id)
  M.clear()
  if text == nil or text == "" then
    return
  end
  local lines = vim.split(text, "\n", { plain = true })
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  local mid_line = line:sub(col + 1):match("%S") ~= nil
  local display
  if HAS_INLINE or not mid_line then
    local opts = { virt_text = { { lines[1], M.config.hl_group } }, hl_mode = "combine" }
    opts.virt_text_pos = HAS_INLINE and "inline" or "eol"
    if #lines > 1 then
      local extra = {}
      for i = 2, #lines do
        table.insert(extra, { { lines[i], M.config.hl_group } })
      end
      opts.virt_lines = extra
    end
    vim.api.nvim_buf_set_extmark(buf, ns, row, col, opts)
    display = opts.virt_text_pos
  else
    -- End-of-line virtual text after code that follows the cursor would read as appended to the line.
    show_float(lines)
    display = "float"
  end
  state.suggestion = { buf = buf, row = row, col = col, text = text, id = id, display = display,
                       tick = vim.api.nvim_buf_get_changedtick(buf) }
end

-- Status ---------------------------------------------------------------------------------------

local function status_of(client_id)
  state.status[client_id] = state.status[client_id] or { engine = "starting", indexing = false, notified = {} }
  return state.status[client_id]
end

local function notify_once(st, key, message, level)
  if not M.config.notify or st.notified[key] then
    return
  end
  st.notified[key] = true
  vim.notify(message, level)
end

--- Handler for `window/showMessage`: the server also announces a failed model load that way; the
--- plugin has said so already (one notification per failure), so that error is not shown twice.
function M.on_show_message(err, result, ctx, config)
  local st = ctx and status_of(ctx.client_id)
  if st and st.engine == "failed" and type(result) == "table" and result.type == vim.lsp.protocol.MessageType.Error
      and st.notified.failed then
    return
  end
  return vim.lsp.handlers["window/showMessage"](err, result, ctx, config)
end

--- Handler for the server's `mochi/status` notification ({state, detail, model, latency_ms}).
function M.on_status(_, params, ctx)
  if type(params) ~= "table" or not ctx then
    return
  end
  local st = status_of(ctx.client_id)
  local s = params.state
  if s == "indexing" then
    st.indexing = true
  elseif s == "indexed" then
    st.indexing = false
  elseif type(s) == "string" then
    local before = st.engine
    st.engine = s
    st.detail = type(params.detail) == "string" and params.detail or ""
    if type(params.model) == "string" and params.model ~= "" then
      st.model = params.model
    elseif s == "ready" and st.detail ~= "" then
      st.model = st.detail
    end
    if s == "loading" then
      st.notified.ready, st.notified.failed = nil, nil -- a reload (model settings changed) notifies again
      notify_once(st, "loading", "Mochi: loading the model…", vim.log.levels.INFO)
    elseif s == "ready" and before == "loading" then
      notify_once(st, "ready", "Mochi: model ready" .. (st.model and (" (" .. st.model .. ")") or ""), vim.log.levels.INFO)
    elseif s == "failed" then
      notify_once(st, "failed", "Mochi: " .. (st.detail ~= "" and st.detail or "the model failed to load")
        .. "; no suggestions until it loads (:MochiStatus)", vim.log.levels.ERROR)
    end
  end
  if type(params.latency_ms) == "number" then
    st.latency_ms = params.latency_ms
  end
  pcall(vim.api.nvim_exec_autocmds, "User", { pattern = "MochiStatus", modeline = false })
  pcall(vim.cmd, "redrawstatus")
end

--- What the server last reported for `buf`'s client: { engine, detail, model, latency_ms, indexing }, or nil.
function M.state(buf)
  local client = client_for(buf and buf ~= 0 and buf or vim.api.nvim_get_current_buf())
  if not client then
    return nil
  end
  local st = status_of(client.id)
  return { engine = st.engine, detail = st.detail, model = st.model, latency_ms = st.latency_ms, indexing = st.indexing }
end

--- A statusline component: "" when Mochi is not attached, else e.g. "Mochi: loading model",
--- "Mochi: indexing", "Mochi 142 ms", "Mochi: model failed".
--- `set statusline+=%{v:lua.require'mochi'.statusline()}`, or a lualine component.
function M.statusline()
  local st = M.state(0)
  if not st then
    return ""
  end
  local parts = {}
  if st.engine == "loading" then
    table.insert(parts, "loading model")
  elseif st.engine == "failed" then
    table.insert(parts, "model failed")
  elseif st.engine == "starting" or st.engine == "none" then
    table.insert(parts, "starting")
  end
  if st.indexing then
    table.insert(parts, "indexing")
  end
  if #parts > 0 then
    return "Mochi: " .. table.concat(parts, ", ")
  end
  if st.latency_ms then
    return string.format("Mochi %d ms", math.floor(st.latency_ms + 0.5))
  end
  return "Mochi"
end

--- The `mochi.status` answer as a few readable lines.
function M.format_status(res)
  if type(res) ~= "table" then
    return "Mochi: no status (" .. tostring(res) .. ")"
  end
  local idx = type(res.index) == "table" and res.index or {}
  local engine = tostring(res.engine or "?")
  if res.engine_error and res.engine_error ~= "" and res.engine_error ~= vim.NIL then
    engine = engine .. " (" .. tostring(res.engine_error) .. ")"
  end
  local index = idx.indexing and "indexing" or (idx.available and "ready" or "unavailable")
  if idx.error and idx.error ~= "" and idx.error ~= vim.NIL then
    index = index .. " (" .. tostring(idx.error) .. ")"
  end
  local cfg = type(res.config) == "table" and res.config or {}
  return table.concat({
    string.format("Mochi: model %s%s", engine, (res.model and res.model ~= "") and (" — " .. res.model) or ""),
    string.format("  project: %s · index: %s", res.root ~= "" and tostring(res.root) or "(none)", index),
    string.format("  requests %s · generated %s · from cache %s · empty %s · cancelled %s",
      tostring(res.requests or 0), tostring(res.generated or 0), tostring(res.cache_hits or 0),
      tostring(res.empty or 0), tostring(res.cancelled or 0)),
    string.format("  last suggestion %s ms · max_tokens %s · debounce %s ms · multiline %s",
      tostring(res.last_latency_ms or "-"), tostring(cfg.max_tokens or "?"), tostring(cfg.debounce_ms or "?"),
      tostring(cfg.multiline or "?")),
  }, "\n")
end

--- Ask the server for its status; `callback(err, result)` runs when the answer arrives.
function M.status(callback)
  local client = client_for(vim.api.nvim_get_current_buf())
  if not client then
    callback("not attached", nil)
    return
  end
  client.request("workspace/executeCommand", { command = "mochi.status", arguments = {} }, function(err, res)
    callback(err, res)
  end, vim.api.nvim_get_current_buf())
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

local function termcodes(keys)
  return vim.api.nvim_replace_termcodes(keys, true, false, true)
end

local function find_map(maps, lhs)
  local want = termcodes(lhs)
  for _, m in ipairs(maps) do
    if m.lhs and termcodes(m.lhs) == want and m.desc ~= "Mochi: accept suggestion" then
      return m
    end
  end
  return nil
end

--- What the accept key does when there is no suggestion: the buffer-local mapping it replaced,
--- else the global insert mapping of that key (looked up now, so plugins set up later count), else
--- the key itself (a literal <Tab>).
function M.fallback(buf, lhs)
  local m = state.fallbacks[buf] or find_map(vim.api.nvim_get_keymap("i"), lhs)
  local keys, noremap = lhs, true
  if m then
    noremap = m.noremap == 1
    if m.callback then
      local out = m.callback()
      if m.expr ~= 1 then
        return
      end
      keys = type(out) == "string" and out or ""
    elseif m.expr == 1 then
      keys = vim.api.nvim_eval(m.rhs)
    else
      keys = m.rhs or ""
    end
  end
  keys = termcodes(keys)
  if keys == termcodes(lhs) then
    noremap = true -- the key itself: never back into this mapping
  end
  if keys ~= "" then
    vim.api.nvim_feedkeys(keys, noremap and "in" or "im", false)
  end
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
      handlers = { ["mochi/status"] = M.on_status, ["window/showMessage"] = M.on_show_message },
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
    vim.api.nvim_create_autocmd("CursorMovedI", { group = group, buffer = buf, callback = function()
      local s = state.suggestion
      local cur = vim.api.nvim_win_get_cursor(0)
      if s and (s.row ~= cur[1] - 1 or s.col ~= cur[2]) then
        M.clear() -- the suggestion belongs where it was asked for
      end
    end })
  end
  local keys = M.config.keymaps
  if keys.accept then
    if state.fallbacks[buf] == nil then
      -- Remember a buffer-local mapping we are about to replace (nvim-cmp, snippet plugins).
      state.fallbacks[buf] = find_map(vim.api.nvim_buf_get_keymap(buf, "i"), keys.accept) or false
    end
    vim.keymap.set("i", keys.accept, function()
      if not M.accept() then
        M.fallback(buf, keys.accept)
      end
    end, { buffer = buf, desc = "Mochi: accept suggestion" })
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
    M.status(function(err, res)
      -- The answer arrives after the command returned: echo it whole, into :messages too.
      local text = err and ("Mochi: status request failed: " .. tostring(err.message or err)) or M.format_status(res)
      vim.api.nvim_echo({ { text, err and "ErrorMsg" or "Normal" } }, true, {})
    end)
  end, { desc = "Mochi: server status" })
end

return M
