"""Evaluation: holes on held-out files, four configurations, EM / edit similarity with bootstrap CIs."""
