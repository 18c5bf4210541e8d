"""Router and shared frame: `streamlit run app/Home.py`.

Every page is a thin module under app/views; this file only sets the page config, registers the pages
with st.navigation and draws the sidebar's store status on every page. The folder is not called `pages`:
beside the main script that name puts Streamlit in its old multipage mode, so a shared deep link opened
on a freshly started server would run the page without this router.
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
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/zoo.py", title="Zoo", icon=":material/science:", url_path="zoo"),
    st.Page("views/merge_builder.py", title="Merge builder", icon=":material/account_tree:", url_path="merge"),
    st.Page("views/runs.py", title="Runs", icon=":material/timer:", url_path="runs"),
    st.Page("views/compare.py", title="Compare", icon=":material/bar_chart:", url_path="compare"),
    st.Page("views/tree_view.py", title="Tree view", icon=":material/search:", url_path="tree"),
    st.Page("views/connectivity.py", title="Connectivity", icon=":material/timeline:", url_path="connectivity"),
]
if (HERE / "views" / "report.py").exists():  # written by the experiment/report module
    pages.append(st.Page("views/report.py", title="Report", icon=":material/description:", url_path="report"))

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
