"""Small helpers shared by tests."""
import cv2


def read_frames(path) -> list:
    """Every frame OpenCV can decode from a video file."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames
