"""The two modes of ``tools/live_accuracy.py``: class-folder photos (:mod:`.folders`) and HaGRID's
annotated photos (:mod:`.hagrid`), each played as a video through the live loop."""
