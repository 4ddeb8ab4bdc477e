"""SSH tunnel: forwards the target's requests through a bastion host."""
