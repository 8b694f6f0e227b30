"""Placeholder until its issue lands."""

import streamlit as st

st.title("Coming soon")
st.info("This tool is being built. Try the Attention explorer meanwhile.")
