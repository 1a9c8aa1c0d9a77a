"""The grammar as package data: this directory ships in the wheel as `cortexlang.grammar`."""
