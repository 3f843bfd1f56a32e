"""RAVAS: real-time, local audiovisual anonymization (virtual camera + virtual microphone)."""

import os as _os

# OpenCV reads these when cv2 is first imported: probing for a missing camera stays quiet.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
_os.environ.setdefault("OPENCV_VIDEOIO_PRIORITY_OBSENSOR", "0")

__version__ = "0.1.0"
