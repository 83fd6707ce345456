#!/usr/bin/env python3
"""Checks the status page as a person sees it, from the DOM headless
Chromium dumped after the page's script ran.

Usage: check_status_page.py DOM.html THROTTLE CONFIGURED_RATE MARKUP_NAME

THROTTLE's row must show its name, state "running", the configured rate,
an achieved rate (last second and mean) within generous bounds of it,
and a chart with data points; the throttle named MARKUP_NAME (markup
characters) must be shown as that text, and no element its markup
would make may exist.
"""
import html.parser
import sys


class Page(html.parser.HTMLParser):
    """The table rows (data-throttle -> cell class -> text), the number of
    points of each row's chart, and every tag seen."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.points = {}
        self.tags = set()
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "tr" and "data-throttle" in attrs:
            self._row = attrs["data-throttle"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            self._cell = attrs.get("class", "").split(" ")[0]
            self.rows[self._row][self._cell] = ""
        elif tag == "polyline" and self._row is not None:
            points = attrs.get("points", "").split()
            self.points[self._row] = len(points)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._cell is not None:
            self.rows[self._row][self._cell] += data


def main():
    dom_path, throttle, configured, markup_name = sys.argv[1:5]
    configured = float(configured)
    page = Page()
    with open(dom_path, encoding="utf-8") as f:
        page.feed(f.read())
    failures = []
    row = page.rows.get(throttle)
    if row is None:
        sys.exit(f"no row for throttle {throttle!r}; rows: {list(page.rows)}")
    print(f"{throttle}: {row}, chart points: {page.points.get(throttle)}")
    if row.get("name") != throttle:
        failures.append(f"name cell shows {row.get('name')!r}")
    if row.get("state") != "running":
        failures.append(f"state shows {row.get('state')!r}, not running")
    if float(row.get("configured", "nan")) != configured:
        failures.append(f"configured rate shows {row.get('configured')!r}")
    # Generous: the worker may be descheduled for a while on a loaded
    # machine, and the rate is never above the configured one by design.
    for cell in ("achieved", "mean"):
        value = float(row.get(cell, "nan"))
        if not 0.2 * configured <= value <= 1.2 * configured:
            failures.append(f"{cell} rate {value} is not near {configured}")
    if int(row.get("emissions", "0")) < 100:
        failures.append(f"total emissions {row.get('emissions')!r} < 100")
    if page.points.get(throttle, 0) < 8:
        failures.append(f"chart has {page.points.get(throttle, 0)} points (< 8)")
    markup = page.rows.get(markup_name)
    if markup is None or markup.get("name") != markup_name:
        failures.append(f"the name {markup_name!r} is not shown as text: "
                        f"rows {list(page.rows)}")
    if "i" in page.tags:
        failures.append("the markup name made an <i> element")
    for failure in failures:
        print("FAIL:", failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
