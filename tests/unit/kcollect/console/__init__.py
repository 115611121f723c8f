"""Tests of kcollect/console."""
