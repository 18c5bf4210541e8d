"""Router and shared frame: `streamlit run app/Home.py`.

Every page is a thin module under app/pages; this file only sets the page config, registers the pages
with st.navigation and draws the sidebar's store status on every page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui.frame import sidebar_status, store_busy
from app.ui.text import md
from store.db import StoreBusy, StoreError

HERE = Path(__file__).parent

st.set_page_config(page_title="Hierarchical Re-Basin Lab", page_icon=":material/account_tree:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/zoo.py", title="Zoo", icon=":material/science:", url_path="zoo"),
    st.Page("pages/merge_builder.py", title="Merge builder", icon=":material/account_tree:", url_path="merge"),
    st.Page("pages/runs.py", title="Runs", icon=":material/timer:", url_path="runs"),
    st.Page("pages/compare.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("pages/tree_view.py", title="Tree view", icon=":material/search:", url_path="tree"),
    st.Page("pages/connectivity.py", title="Connectivity", icon=":material/timeline:", url_path="connectivity"),
]
if (HERE / "pages" / "report.py").exists():  # written by the experiment/report module
    pages.append(st.Page("pages/report.py", title="Report", icon=":material/description:", url_path="report"))

page = st.navigation(pages)
status_slot = st.sidebar.container()  # on top of the sidebar, filled once the page ran (see sidebar_status)
try:
    page.run()
except StoreBusy as err:  # another process held the store past the timeout: a notice, then a retry
    store_busy(err)
except StoreError as err:  # damaged store file or full disk: what to do, not a traceback
    st.error(md(err))
finally:  # also after st.stop() in a page
    sidebar_status(status_slot)
