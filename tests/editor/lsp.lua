-- Drives `vmctl lsp` from a real Neovim (0.7.2 API: vim.lsp.start_client, buf_attach_client,
-- vim.diagnostic.get), headless, for tests/it/lsp_nvim.rs. Reads VMCTL_BIN, VMCTL_FLEET and
-- VMCTL_RESULT from the environment and writes what it saw to VMCTL_RESULT as JSON.
local bin = os.getenv('VMCTL_BIN')
local root = os.getenv('VMCTL_FLEET')
local result_path = os.getenv('VMCTL_RESULT')
local out = { steps = {} }

local function step(name, value)
  table.insert(out.steps, name)
  out[name] = value
end

local function codes(bufnr)
  local list = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
    table.insert(list, code)
  end
  return list
end

local function has(bufnr, code)
  for _, c in ipairs(codes(bufnr)) do
    if c == code then return true end
  end
  return false
end

local function open(path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  return vim.api.nvim_get_current_buf()
end

local function main()
  local client_id = vim.lsp.start_client({
    name = 'vmctl',
    cmd = { bin, 'lsp' },
    root_dir = root,
  })
  assert(client_id, 'vim.lsp.start_client failed')
  local client = vim.lsp.get_client_by_id(client_id)

  local defs = open(root .. '/vms/definitions.nix')
  vim.lsp.buf_attach_client(defs, client_id)
  assert(vim.wait(20000, function() return has(defs, 'VM001') end, 20), 'no VM001 within 20 s: ' .. vim.inspect(codes(defs)))
  local vm001
  for _, d in ipairs(vim.diagnostic.get(defs)) do
    local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
    if code == 'VM001' then vm001 = d end
  end
  step('vm001', { lnum = vm001.lnum, col = vm001.col, end_col = vm001.end_col, message = vm001.message, source = vm001.source })

  -- The code action for it, applied as the editor applies any workspace edit.
  -- The line is ASCII: byte columns are UTF-16 columns.
  local range = {
    start = { line = vm001.lnum, character = vm001.col },
    ['end'] = { line = vm001.end_lnum, character = vm001.end_col },
  }
  local resp = client.request_sync('textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(defs) },
    range = range,
    context = { diagnostics = {} },
  }, 10000, defs)
  assert(resp and resp.result, 'no code action response: ' .. vim.inspect(resp))
  local action
  for _, a in ipairs(resp.result) do
    if string.find(a.title, 'VM001', 1, true) then action = a end
  end
  assert(action, 'no VM001 code action: ' .. vim.inspect(resp.result))
  step('action', action.title)
  vim.lsp.util.apply_workspace_edit(action.edit, client.offset_encoding or 'utf-16')
  step('fixed_line', vim.api.nvim_buf_get_lines(defs, vm001.lnum, vm001.lnum + 1, false)[1])
  assert(vim.wait(20000, function() return not has(defs, 'VM001') end, 20), 'VM001 still there: ' .. vim.inspect(codes(defs)))
  step('cleared', codes(defs))

  -- hosts.nix and .sops.yaml in the same run: doc1 given igpu's key in the (unsaved) hosts.nix
  -- buffer makes .sops.yaml's doc1 recipient stale.
  local sops = open(root .. '/.sops.yaml')
  vim.lsp.buf_attach_client(sops, client_id)
  local hosts = open(root .. '/hosts.nix')
  vim.lsp.buf_attach_client(hosts, client_id)
  vim.wait(2000, function() return false end, 50)
  step('sops_before', codes(sops))
  local lines = vim.api.nvim_buf_get_lines(hosts, 0, -1, false)
  local doc1 = 'AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH'
  local igpu = 'AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6'
  for i, l in ipairs(lines) do
    local s = string.find(l, doc1, 1, true)
    if s then
      vim.api.nvim_buf_set_text(hosts, i - 1, s - 1, i - 1, s - 1 + #doc1, { igpu })
    end
  end
  assert(vim.wait(20000, function() return has(sops, 'FL002') end, 20), 'no FL002 in .sops.yaml: ' .. vim.inspect(codes(sops)))
  assert(vim.wait(20000, function() return has(hosts, 'HS002') end, 20), 'no HS002 in hosts.nix: ' .. vim.inspect(codes(hosts)))
  step('sops_after', codes(sops))
  step('hosts_after', codes(hosts))

  -- And into definitions.nix: test-automation's `sopsRules` names igpu's rule; renaming the
  -- rule in the unsaved .sops.yaml buffer makes it name no rule (SP011).
  assert(not has(defs, 'SP011'), 'SP011 before the edit: ' .. vim.inspect(codes(defs)))
  local sops_lines = vim.api.nvim_buf_get_lines(sops, 0, -1, false)
  for i, l in ipairs(sops_lines) do
    local s = string.find(l, 'secrets/hosts/igpu/', 1, true)
    if s then
      vim.api.nvim_buf_set_text(sops, i - 1, s - 1 + #'secrets/hosts/igpu', i - 1, s - 1 + #'secrets/hosts/igpu', { '2' })
    end
  end
  assert(vim.wait(20000, function() return has(defs, 'SP011') end, 20), 'no SP011 in definitions.nix: ' .. vim.inspect(codes(defs)))
  step('defs_after', codes(defs))

  -- And from hosts.nix into definitions.nix: deleting the admin keys' line in the unsaved
  -- hosts.nix buffer leaves provisioned VMs unreachable (FL005 at `managed`); undo brings the
  -- line back and the warning goes.
  assert(not has(defs, 'FL005'), 'FL005 before the edit: ' .. vim.inspect(codes(defs)))
  local admin_line
  for i, l in ipairs(vim.api.nvim_buf_get_lines(hosts, 0, -1, false)) do
    if string.find(l, 'adminKeys', 1, true) then admin_line = i end
  end
  assert(admin_line, 'no adminKeys line in hosts.nix')
  vim.api.nvim_set_current_buf(hosts)
  vim.api.nvim_win_set_cursor(0, { admin_line, 0 })
  vim.cmd('silent normal! dd')
  assert(vim.wait(20000, function() return has(defs, 'FL005') end, 20), 'no FL005 in definitions.nix: ' .. vim.inspect(codes(defs)))
  local fl005
  for _, d in ipairs(vim.diagnostic.get(defs)) do
    local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
    if code == 'FL005' then fl005 = d end
  end
  step('fl005', { lnum = fl005.lnum, col = fl005.col, severity = fl005.severity })
  vim.cmd('silent normal! u')
  step('hosts_undone', vim.api.nvim_buf_get_lines(hosts, admin_line - 1, admin_line, false)[1])
  assert(vim.wait(20000, function() return not has(defs, 'FL005') end, 20), 'FL005 still there after undo: ' .. vim.inspect(codes(defs)))
  step('defs_undone', codes(defs))
end

local ok, err = pcall(main)
out.ok = ok
out.error = ok and vim.NIL or tostring(err)
vim.fn.writefile({ vim.fn.json_encode(out) }, result_path)
vim.cmd(ok and 'qall!' or 'cquit! 1')
