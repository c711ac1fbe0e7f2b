-- Nothing starts until require("mochi").setup{...} is called (see editors/nvim/README in editors/README.md).
if vim.g.loaded_mochi then
  return
end
vim.g.loaded_mochi = true
