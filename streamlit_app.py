"""NanoTST Explorer: `streamlit run streamlit_app.py`.

Page config and st.navigation over pages/. Every page draws the shared sidebar (the active
model picker) itself with pages._common.sidebar(), so it is there on every page and in AppTest.
"""
import streamlit as st

from pages._common import training_waits

st.set_page_config(page_title="NanoTST Explorer", page_icon="📈", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/schema:", default=True),
    st.Page("pages/signals.py", title="Signals", icon=":material/show_chart:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/inside.py", title="Inside", icon=":material/biotech:"),
    st.Page("pages/forecast.py", title="Forecast", icon=":material/trending_up:"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/science:"),
]

page = st.navigation(PAGES)
st.session_state["_navigated"] = True  # see pages/_common._leave_legacy_navigation
with training_waits():   # this session's training run pauses while the page script runs
    page.run()
