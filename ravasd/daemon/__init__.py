"""The daemon: service loop, control socket, tray, autostart."""
