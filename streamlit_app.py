"""NanoTST Explorer: `streamlit run streamlit_app.py`.

Page config, the shared sidebar (the active model), and st.navigation over pages/.
"""
import streamlit as st

from pages import _common as ui

st.set_page_config(page_title="NanoTST Explorer", page_icon="📈", layout="wide")
ui.setup_torch()

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/schema:", default=True),
    st.Page("pages/signals.py", title="Signals", icon=":material/show_chart:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/attention.py", title="Attention", icon=":material/grid_on:"),
    st.Page("pages/forecast.py", title="Forecast", icon=":material/trending_up:"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/science:"),
]

page = st.navigation(PAGES)
ui.sidebar()
page.run()
