"""``cinn demo``: the three apps in a local web page (Gradio, ``pip install -e '.[demo]'``).

``jobs``: what a request does (read and check the upload, sample, the uncertainty
map), plain NumPy and Keras, testable without a server; ``ui``: the page;
``cli``: the command.
"""
