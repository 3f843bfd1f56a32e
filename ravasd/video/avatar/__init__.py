"""3D avatars: glTF/GLB and VRM loading (model.py), moderngl rendering (renderer.py), the avatar
video converter (converter.py), and the avatar library (library.py)."""
