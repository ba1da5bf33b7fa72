"""This checkout: :data:`ROOT`, its top folder, first on ``sys.path``.

A script of tools/ imports this module before ``agvm_mm`` and ``tools``
(``import checkout``: ``python tools/<script>.py`` puts tools/ on
``sys.path``), so that it runs this checkout's code from any working
directory, whatever copy of ``agvm_mm`` is installed. The tools' packages
read :data:`ROOT` from here (``from tools.checkout import ROOT``).
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
