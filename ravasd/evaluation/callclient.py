"""A real call client: headless Chromium (Debian ``chromium``) picks a microphone by its label
("RAVAS Mic"), sends it through a WebRTC loopback call (two RTCPeerConnections, Opus, the browser's
default processing: echo cancellation, noise suppression, AGC) and records the far end with
MediaRecorder. The page and its results travel over an HTTP server on 127.0.0.1 (a port the OS
picks) that lives only as long as the call; nothing leaves the machine. Used by ``ravasd eval
call`` and the fail-closed tests."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import av
import numpy as np

from ..devices.pulse import ROUTING_ENV
from ..errors import RavasError

PAGE = """<!doctype html><meta charset="utf-8"><title>call</title><script>
const post = (path, body) => fetch(path, {method: "POST", body});
(async () => {
  try {
    const query = new URLSearchParams(location.search);
    const seconds = Number(query.get("seconds")), label = query.get("label");
    (await navigator.mediaDevices.getUserMedia({audio: true})).getTracks().forEach(t => t.stop());
    const devices = await navigator.mediaDevices.enumerateDevices();
    const mic = devices.find(d => d.kind === "audioinput" && d.label === label);
    if (!mic) throw new Error("no " + label + " among: " + devices.map(d => d.kind + " " + d.label).join(", "));
    const stream = await navigator.mediaDevices.getUserMedia({audio: {deviceId: {exact: mic.deviceId}}});
    const a = new RTCPeerConnection(), b = new RTCPeerConnection();
    a.onicecandidate = e => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = e => e.candidate && a.addIceCandidate(e.candidate);
    const far = new Promise(r => b.ontrack = e => r(new MediaStream([e.track])));
    stream.getTracks().forEach(t => a.addTrack(t, stream));
    const offer = await a.createOffer(); await a.setLocalDescription(offer); await b.setRemoteDescription(offer);
    const answer = await b.createAnswer(); await b.setLocalDescription(answer); await a.setRemoteDescription(answer);
    const remote = await far;
    const el = new Audio(); el.muted = true; el.srcObject = remote; await el.play();  // remote audio flows when played
    const rec = new MediaRecorder(remote, {mimeType: "audio/webm;codecs=opus"});
    const chunks = []; rec.ondataavailable = e => chunks.push(e.data);
    const stopped = new Promise(r => rec.onstop = r);
    const t0 = Date.now(); rec.start(200);
    await post("/started?t0=" + t0 + "&settings=" + encodeURIComponent(JSON.stringify(
      stream.getAudioTracks()[0].getSettings())), "");
    await new Promise(r => setTimeout(r, seconds * 1000));
    rec.stop(); await stopped;
    await post("/done?t0=" + t0, new Blob(chunks, {type: "audio/webm"}));
  } catch (e) { await post("/error", String(e && e.stack || e)); }
})();
</script>"""


@dataclass
class FarEnd:
    """What the far end of the call recorded: mono float32 at ``rate`` Hz from epoch time ``t0`` (s)."""

    samples: np.ndarray
    rate: int
    t0: float
    settings: str  # the capture track's settings, as the browser reports them (processing on/off)

    def window(self, a: float, b: float) -> np.ndarray:
        """The far end between epoch times ``a`` and ``b`` (s)."""
        i, j = (max(0, int((t - self.t0) * self.rate)) for t in (a, b))
        return self.samples[i:j]


class Call:
    """One call of ``seconds`` seconds from the microphone labelled ``label``: :meth:`start` returns
    once the far end records (epoch time), :meth:`finish` the :class:`FarEnd`. ``env`` reaches the
    sound server (PULSE_SERVER)."""

    def __init__(self, env: dict, seconds: float, label: str = "RAVAS Mic") -> None:
        self.seconds, self.env, self.label = seconds, env, label
        self.started, self.done = threading.Event(), threading.Event()
        self.t0, self.settings, self.blob, self.error = 0.0, "", b"", ""
        call = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 (http.server's name)
                body = PAGE.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                url = urlparse(self.path)
                q = parse_qs(url.query)
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/started":
                    call.t0, call.settings = int(q["t0"][0]) / 1000, q.get("settings", [""])[0]
                    call.started.set()
                elif url.path == "/done":
                    call.blob = data
                    call.done.set()
                else:
                    call.error = data.decode(errors="replace")
                    call.started.set()
                    call.done.set()
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.profile = tempfile.mkdtemp(prefix="call-chromium-")
        self._log = open(Path(self.profile).with_name(Path(self.profile).name + ".log"), "w+b")  # Chromium's stderr
        self.browser: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> float:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise RavasError(
                "the call client needs Chromium, which is not installed.",
                "install it (Debian: apt install chromium; ./bootstrap.sh test does).",
            )
        url = f"http://127.0.0.1:{self.server.server_address[1]}/?" + urlencode(
            {"seconds": self.seconds, "label": self.label}
        )
        self.browser = subprocess.Popen(
            [
                exe,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={self.profile}",
                url,
            ],
            # the page picks its microphone by label: a default device inherited from pulse.route is not
            # this server's, and Chromium's first getUserMedia would fail on it
            env={k: v for k, v in self.env.items() if k not in ROUTING_ENV},
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        if not self.started.wait(timeout) or self.error:
            why = self.browser_errors()
            self.close()
            raise RavasError(
                f"the call did not start: {self.error or 'no answer from the page'}"
                + (f" (Chromium said: {why})" if why else "")
                + ".",
                "run `ravasd doctor`; a far end needs the sound server and Chromium.",
            )
        return self.t0

    def browser_errors(self, lines: int = 6) -> str:
        """The last error lines Chromium logged (audio and media first): why a microphone did not open."""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace").splitlines()
        errs = [ln.strip() for ln in text if ":ERROR:" in ln or ":WARNING:" in ln]
        media = [ln for ln in errs if any(w in ln.lower() for w in ("audio", "pulse", "alsa", "media", "device"))]
        return " | ".join((media or errs)[-lines:])[:1500]

    def finish(self, timeout: float = 60) -> FarEnd:

        try:
            if not self.done.wait(self.seconds + timeout) or self.error:
                why = self.browser_errors()
                raise RavasError(
                    f"the call did not finish: {self.error or 'no recording came back'}"
                    + (f" (Chromium said: {why})" if why else "")
                    + "."
                )
            with av.open(io.BytesIO(self.blob)) as c:
                res = av.AudioResampler(format="flt", layout="mono", rate=48000)
                x = [o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)]
            return FarEnd(np.concatenate(x).astype(np.float32), 48000, self.t0, self.settings)
        finally:
            self.close()

    def close(self) -> None:
        if self.browser is not None and self.browser.poll() is None:
            self.browser.terminate()
            try:
                self.browser.wait(10)
            except subprocess.TimeoutExpired:
                self.browser.kill()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.profile, ignore_errors=True)
        if not self._log.closed:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
