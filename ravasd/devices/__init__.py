"""Physical and virtual devices: discovery (``ravasd devices``) and, per OS, the virtual ones."""
