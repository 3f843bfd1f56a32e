"""A private PulseAudio server for tests (real server, fake microphone as a null sink + remap source)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CI_PA = """\
.fail
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=fake_cam_mic rate=48000 channels=1 channel_map=mono sink_properties=device.description=Fake_Mic_Sink
load-module module-remap-source source_name=fake_mic master=fake_cam_mic.monitor channels=1 channel_map=mono source_properties="device.description='Fake Mic'"
load-module module-null-sink sink_name=test_out rate=48000 channels=1 channel_map=mono sink_properties=device.description=Test_Out
"""


class PulseServer:
    """Starts ``pulseaudio`` with its own HOME/XDG_RUNTIME_DIR under ``root``; ``env`` reaches it."""

    def __init__(self, root: Path) -> None:
        if not shutil.which("pulseaudio"):
            raise RuntimeError("pulseaudio is not installed (./bootstrap.sh test installs it)")
        self.root = root
        home, xdg = root / "home", root / "xdg"
        home.mkdir(parents=True, exist_ok=True)
        xdg.mkdir(parents=True, exist_ok=True, mode=0o700)
        (root / "ci.pa").write_text(CI_PA)
        self.env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(xdg), PULSE_SERVER=f"unix:{xdg}/pulse/native")
        self._start()

    def restart(self) -> None:
        """Kill the server and start a fresh one on the same socket (a crashed desktop sound server)."""
        self.proc.kill()
        self.proc.wait(5)
        self._start()

    def _start(self) -> None:
        root = self.root
        self.proc = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "-n",
                "-F",
                str(root / "ci.pa"),
                f"--log-target=file:{root / 'pa.log'}",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pulseaudio did not start; see {root / 'pa.log'}")

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class PipeWireServer:
    """PipeWire + WirePlumber + pipewire-pulse with a private session bus; same interface as
    :class:`PulseServer` (the fake microphone is made with ``pactl load-module``)."""

    def __init__(self, root: Path) -> None:
        for prog in ("pipewire", "wireplumber", "pipewire-pulse", "dbus-daemon"):
            if not shutil.which(prog):
                raise RuntimeError(f"{prog} is not installed (./bootstrap.sh test installs it)")
        home, xdg = root / "home", root / "xdg"
        home.mkdir(parents=True, exist_ok=True)
        xdg.mkdir(parents=True, exist_ok=True, mode=0o700)
        bus = xdg / "bus"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "DISPLAY")}
        self.env.update(HOME=str(home), XDG_RUNTIME_DIR=str(xdg), DBUS_SESSION_BUS_ADDRESS=f"unix:path={bus}")
        self.procs = [
            subprocess.Popen(
                ["dbus-daemon", "--session", f"--address=unix:path={bus}", "--nofork", "--nopidfile"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        for _ in range(100):
            if bus.exists():
                break
            time.sleep(0.05)
        self.root = root
        self.env["PULSE_SERVER"] = f"unix:{xdg}/pulse/native"
        self._start()

    def restart(self) -> None:
        """Kill PipeWire, WirePlumber and pipewire-pulse and start them again (the bus stays)."""
        for p in self.procs[1:]:
            p.kill()
            p.wait(5)
        del self.procs[1:]
        self._start()

    def _start(self) -> None:
        root = self.root
        # PipeWire sizes its cycle from the clients' requested latency: 20 ms gives a 256-sample (5 ms)
        # quantum, which a VM's timer hiccups (up to ~12 ms measured here) overrun, so the server itself
        # drops and repeats blocks. A desktop runs 1024 (21 ms) by default; the tests use that floor.
        conf = Path(self.env["HOME"]) / ".config"
        for sub, body in (
            ("pipewire/pipewire.conf.d", "context.properties = { default.clock.min-quantum = 1024 }"),
            ("pipewire/pipewire-pulse.conf.d", "pulse.properties = { pulse.min.quantum = 1024/48000 }"),
        ):
            (conf / sub).mkdir(parents=True, exist_ok=True)
            (conf / sub / "ravas-tests.conf").write_text(body + "\n")
        log = open(root / "pipewire.log", "a")
        for prog in ("pipewire", "wireplumber", "pipewire-pulse"):
            self.procs.append(subprocess.Popen([prog], env=self.env, stdout=log, stderr=log))
            time.sleep(0.3)
        for _ in range(200):
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"pipewire-pulse did not start; see {root / 'pipewire.log'}")
        for line in CI_PA.splitlines()[2:]:  # the same fake microphone and test sink as PulseServer
            args = line.split(" ", 2)[1:]
            name, rest = args[0], args[1]
            import shlex

            self.pactl("load-module", name, *shlex.split(rest))

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
