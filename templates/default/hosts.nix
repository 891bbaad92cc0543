# Fleet identity: every host's SSH host key and how to reach it.
# vmctl adds an entry here when it provisions a VM (`vmctl hosts add`).
{ }
