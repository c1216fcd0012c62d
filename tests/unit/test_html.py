"""HTML as real pages are written: every visible text kept, structure kept (sections, tables, lists, code)."""

from services.ingest.document import CODE, PROSE, TABLE
from services.ingest.parsing import parse


def texts(doc) -> list[str]:
    return [b.text for b in doc.blocks]


def test_text_around_a_block_inside_a_div_is_kept():
    assert texts(parse(b"<html><body><div>Intro<p>Para</p> tail</div></body></html>")) == ["Intro", "Para", "tail"]


def test_div_soup_keeps_text_directly_in_divs_spans_and_body():
    page = b"""<!doctype html><html><head><title>Soup</title></head><body>
      Body text before anything.
      <div class="wrap"><div class="row"><div class="col">First column says hello.</div>
      <div class="col"><span>Second</span> <span>column</span> says goodbye.</div></div></div>
      <span>A lone span at the end.</span></body></html>"""
    doc = parse(page)
    assert texts(doc) == [
        "Body text before anything.",
        "First column says hello.",
        "Second column says goodbye.",
        "A lone span at the end.",
    ]
    assert doc.title == "Soup"


def test_inline_markup_joins_into_one_paragraph_and_br_breaks_lines():
    doc = parse(b"<body><div>Cats are <b>great</b>, <a href='#'>dogs</a> too<br>New line <code>x=1</code>.</div>")
    assert texts(doc) == ["Cats are great, dogs too\nNew line x=1."]


def test_hidden_text_is_not_visible_text():
    page = b"""<body><div hidden>secret one</div><p style="display: none">secret two</p>
      <span aria-hidden="true">icon</span><p>Shown.</p><template>tpl</template></body>"""
    assert texts(parse(page)) == ["Shown."]


def test_nested_layouts_keep_sections_and_card_text():
    page = b"""<html><body><main><div class="container"><section><div>
      <h2>Plans</h2><div class="grid">
        <div class="card"><h3>Basic</h3>Ten projects, community support.<ul><li>1 GB</li><li>Email</li></ul></div>
        <div class="card"><h3>Pro</h3><div><div>Unlimited projects.</div></div>Phone support.</div>
      </div></div></section>
      <section><h2>Contact</h2><div><div><div>Write to sales.</div></div></div></section></div></main></body></html>"""
    doc = parse(page)
    assert [(b.text, b.section) for b in doc.blocks] == [
        ("Ten projects, community support.", ("Plans", "Basic")),
        ("1 GB", ("Plans", "Basic")),
        ("Email", ("Plans", "Basic")),
        ("Unlimited projects.", ("Plans", "Pro")),
        ("Phone support.", ("Plans", "Pro")),
        ("Write to sales.", ("Contact",)),
    ]


DOCS_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Configuration - Quarry docs</title>
<script>window.dataLayer = [];</script><style>.note{color:red}</style></head>
<body>
<header class="site-header"><a href="/">Quarry</a><nav><a href="/docs">Docs</a><a href="/blog">Blog</a></nav></header>
<div class="layout">
  <aside class="sidebar"><nav><ul><li><a href="/install">Install</a></li>
    <li><a href="/config">Config</a></li></ul></nav></aside>
  <main><article>
    <header><h1>Configuration</h1><div class="meta">Updated in version 2.4</div></header>
    Quarry reads its settings from the environment.
    <div class="admonition note"><p class="admonition-title">Note</p>Restart the server after a change.</div>
    <h2>Variables</h2>
    <table><thead><tr><th>Name</th><th>Default</th></tr></thead>
      <tbody><tr><td><code>QUARRY_PORT</code></td><td>8080</td></tr><tr><td><code>QUARRY_DIR</code></td><td>/var/quarry</td></tr></tbody></table>
    <h2>Example</h2>
    <div class="highlight"><pre><code>export QUARRY_PORT=9090
quarry serve</code></pre></div>
    <p>Then check:</p><ol><li>the log says <em>listening</em>;</li><li>the port answers.</li></ol>
  </article></main>
</div>
<footer>Copyright 2026 Quarry Inc. <a href="/privacy">Privacy</a></footer>
</body></html>"""


def test_a_docs_site_page_keeps_article_structure_and_drops_site_chrome():
    doc = parse(DOCS_PAGE)
    assert doc.title == "Configuration - Quarry docs"
    assert [(b.text, b.section, b.kind) for b in doc.blocks] == [
        ("Updated in version 2.4", ("Configuration",), PROSE),
        ("Quarry reads its settings from the environment.", ("Configuration",), PROSE),
        ("Note", ("Configuration",), PROSE),
        ("Restart the server after a change.", ("Configuration",), PROSE),
        (
            "Name: QUARRY_PORT; Default: 8080\nName: QUARRY_DIR; Default: /var/quarry",
            ("Configuration", "Variables"),
            TABLE,
        ),
        ("export QUARRY_PORT=9090\nquarry serve", ("Configuration", "Example"), CODE),
        ("Then check:", ("Configuration", "Example"), PROSE),
        ("the log says listening;", ("Configuration", "Example"), PROSE),
        ("the port answers.", ("Configuration", "Example"), PROSE),
    ]
    for chrome in ["Blog", "Install", "Copyright", "dataLayer", "color:red"]:
        assert chrome not in doc.text


ARABIC_PAGE = """<!doctype html><html lang="ar" dir="rtl"><head><title>الطقس في القاهرة</title></head><body>
<div class="content"><h1>توقعات الأسبوع</h1>
يكون الطقس حارا ومشمسا طوال الأسبوع.
<div>تنخفض درجات الحرارة <b>ليلا</b> في الصحراء.</div>
<table><tr><th>اليوم</th><th>الحرارة</th></tr><tr><td>السبت</td><td>٣٥</td></tr></table>
</div></body></html>""".encode()


def test_an_arabic_page_keeps_its_text_sections_and_table():
    doc = parse(ARABIC_PAGE)
    assert doc.title == "الطقس في القاهرة"
    assert [(b.text, b.section, b.kind) for b in doc.blocks] == [
        ("يكون الطقس حارا ومشمسا طوال الأسبوع.", ("توقعات الأسبوع",), PROSE),
        ("تنخفض درجات الحرارة ليلا في الصحراء.", ("توقعات الأسبوع",), PROSE),
        ("اليوم: السبت; الحرارة: ٣٥", ("توقعات الأسبوع",), TABLE),
    ]


def test_a_table_without_header_cells_keeps_every_row():
    doc = parse(b"<body><table><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></table></body>")
    assert texts(doc) == ["a | 1\nb | 2"]


def test_deeply_nested_markup_is_parsed_without_recursion():
    depth = 50_000
    page = b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"<p>after</p></body></html>"
    assert texts(parse(page)) == ["deep text", "after"]


def test_a_fragment_without_html_tags_is_still_read():
    assert texts(parse(b"<div>only a div</div>", content_type="text/html")) == ["only a div"]
