"""The one way user text enters Streamlit Markdown (titles, captions, st.success/st.error messages).

Streamlit renders `st.markdown`, `st.caption`, `st.success`, `st.error`, … bodies and widget labels as
Markdown; a zoo named `x ![p](http://host/pixel.png)` would make every viewer's browser fetch that URL.
Wrap every piece of user text (names, stored error messages) in `md()` before it goes into such a string.
"""

from __future__ import annotations

from backend.text import escape_markdown


def md(text: object) -> str:
    """User text as inert Markdown: it renders as exactly these characters."""
    return escape_markdown(text)
