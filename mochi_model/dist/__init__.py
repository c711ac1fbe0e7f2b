"""Adapter distribution: pack, install, list and auto-detect shared LoRA adapters.

Modules (each with one job):
    manifest    the ``manifest.json`` schema (versioned) and its validation
    identity    the current project's identity (normalised git remote, name)
    pack        adapter folder -> ``NAME-VERSION.mochi.tar.gz``
    archive     safe reading/extraction of archives (no links, traversal, devices, huge sizes)
    install     verify checksums and install atomically under ``~/.mochi/adapters``
    sources     fetch from / upload to local paths, http(s), fsspec stores, ``hf://``
    registry    installed adapters: list, resolve ``NAME[@VERSION]``, uninstall
    autodetect  which adapters a project uses (flags > config pins > matching installed)
"""
