#!/usr/bin/env python3
"""Rewrites the log-event table at the end of docs/operations.md from the [LoggerMessage] attributes in src/
(LogEventTests fails until the table and the code agree): python3 build/log-events-table.py"""
import glob, os, re
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rows = []
for f in sorted(glob.glob(os.path.join(root, 'src/**/*.cs'), recursive=True)):
    if '/obj/' in f or '/bin/' in f:
        continue
    s = open(f).read()
    for m in re.finditer(r'\[LoggerMessage\((\d+),\s*LogLevel\.(\w+),\s*"((?:[^"\\]|\\.)*)"', s):
        rows.append((int(m.group(1)), m.group(2), m.group(3), f))
    for m in re.finditer(r'\[LoggerMessage\(EventId = (\d+)(?:, Level = LogLevel\.(\w+))?, Message = "((?:[^"\\]|\\.)*)"', s):
        rows.append((int(m.group(1)), m.group(2) or 'as forwarded', m.group(3), f))
rows.sort()
path = os.path.join(root, 'docs', 'operations.md')
s = open(path).read()
head = s[:s.index('| id | level | written by | message |')]
out = ['| id | level | written by | message |', '|---|---|---|---|']
for i, level, message, f in rows:
    name = os.path.basename(f)[:-3]
    out.append('| %d | %s | `%s` | %s |' % (i, level, name, message.replace('|', '\\|')))
open(path, 'w').write(head + '\n'.join(out) + '\n')
