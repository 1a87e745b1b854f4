"""The campaign page: the live count, the countdown and the share kit, as one small HTML
document per language (inline CSS and script, no external file, no build step).

Everything shown is escaped here: catalog texts, the organizers' message, links. The page's
own configuration travels in `data-` attributes (escaped like any attribute), never inside
the script, so no text can end it. Numbers are formatted by the catalogs' Translator, on the
server, for the page and for every live update alike.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from bot.core import i18n
from bot.core.i18n import Raw, Translator, _, language_name, ngettext
from bot.services.campaign import duration
from bot.services.render import SMALL_COMMUNITY
from bot.web.live import Snapshot

MARK = "\x00"  # where the count goes in a translated sentence


@dataclass(frozen=True, slots=True)
class PageContext:
    """What a page shows besides the counts: its language, links and message."""

    language: str
    languages: tuple[str, ...]
    root: str  # relative path from this page to the site's root: "" or "../"
    message: str
    telegram: str | None  # the deep link that pledges, when the bot's username is known
    discord: str | None  # an invite link, when one is configured
    canonical: str | None  # the page's public address, when configured
    now: datetime
    zone: ZoneInfo
    length: timedelta  # how long the freeze lasts (its window's length)
    # A community's page (/webpage): its own count next to the coalition's; the campaign
    # page is `root` + "../../" away. None: the campaign's page.
    community: int | None = None


def _e(text: str) -> str:
    return escape(text, quote=True)


def _millis(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _split(sentence: str, number: str) -> list[str]:
    """A sentence cut around its count: [before, the number, after]."""
    before, mark, after = sentence.partition(MARK)
    if not mark:  # a translation without the count: show the number before it
        return ["", number, " " + sentence]
    return [before, number, after.replace(MARK, number)]


def community_text(count: int, translator: Translator) -> list[str]:
    """A community's count on its page, cut around the number: "fewer than 5" below 5."""
    with i18n.use(translator):
        if count < SMALL_COMMUNITY:
            sentence = ngettext(
                "Fewer than {count} volunteer has pledged in this community",
                "Fewer than {count} volunteers have pledged in this community",
                SMALL_COMMUNITY,
                count=Raw(MARK),
            )
            return _split(sentence, translator.number(SMALL_COMMUNITY))
        sentence = ngettext(
            "{count} volunteer has pledged in this community",
            "{count} volunteers have pledged in this community",
            count,
            count=Raw(MARK),
        )
        return _split(sentence, translator.number(count))


def live_texts(
    snapshot: Snapshot, translator: Translator, community: int | None = None
) -> dict[str, Any]:
    """What a page shows of the counts, written in its language (sent live as JSON too);
    `community`: that community's count, on its own page."""
    texts: dict[str, Any] = {}
    if community is not None:
        texts["community"] = community_text(community, translator)
    with i18n.use(translator):
        pledged = ngettext(
            "{count} volunteer has pledged to freeze their accounts",
            "{count} volunteers have pledged to freeze their accounts",
            snapshot.pledged,
            count=Raw(MARK),
        )
        froze = ngettext(
            "{count} volunteer froze their accounts",
            "{count} volunteers froze their accounts",
            snapshot.froze,
            count=Raw(MARK),
        )
        goal = _(
            "{percent} of the goal of {goal}",
            percent=translator.percent(min(snapshot.pledged / snapshot.goal, 9.99)),
            goal=snapshot.goal,
        )
    return texts | {
        "pledged": _split(pledged, translator.number(snapshot.pledged)),
        "froze": _split(froze, translator.number(snapshot.froze)),
        "goal": goal,
        "value": min(snapshot.pledged, snapshot.goal),
        "max": snapshot.goal,
        "start": _millis(snapshot.start),
        "end": _millis(snapshot.end),
    }


STYLE = """\
:root{color-scheme:light;--ink:#1b1b1f;--soft:#4a4a55;--accent:#9b1c1c;--line:#d9d9e0}
*{box-sizing:border-box}
body{margin:0;font:1.0625rem/1.55 system-ui,"Noto Sans","Noto Sans Arabic",\
"Segoe UI",Tahoma,sans-serif;color:var(--ink);background:#fff}
header,main,footer{max-width:44rem;margin:0 auto;padding:0 1.25rem}
nav ul{list-style:none;display:flex;gap:1rem;padding:0;margin:1rem 0;flex-wrap:wrap}
a{color:#1a4fa0}a[aria-current]{color:var(--ink);font-weight:700;text-decoration:none}
h1{font-size:1.9rem;line-height:1.2;margin:.5rem 0}
h2{font-size:1.25rem;margin:2rem 0 .75rem}
.lead{color:var(--soft)}
#counts{border:2px solid var(--line);border-radius:.75rem;padding:1rem 1.25rem;margin:1.5rem 0}
.big{font-size:1.35rem;margin:.25rem 0}
.n{unicode-bidi:isolate;font-variant-numeric:tabular-nums}
.big .n{display:inline-block;font-size:3rem;line-height:1.1;color:var(--accent)}
progress{appearance:none;-webkit-appearance:none;width:100%;height:1rem;border:0;\
border-radius:.5rem;background:#ececf1;overflow:hidden;margin-top:.75rem}
progress::-webkit-progress-bar{background:#ececf1}
progress::-webkit-progress-value{background:var(--accent)}
progress::-moz-progress-bar{background:var(--accent)}
.cd{display:flex;gap:.75rem;flex-wrap:wrap;margin:.5rem 0}
.cd div{border:2px solid var(--line);border-radius:.5rem;padding:.4rem .8rem;text-align:center;\
min-width:5rem}
.cd .n{display:block;font-size:1.8rem;font-weight:700}
.cd span+span{font-size:.9rem;color:var(--soft)}
blockquote{margin:0;padding:1rem;border-inline-start:4px solid var(--accent);\
background:#f6f6f8;white-space:pre-wrap;overflow-wrap:anywhere}
button,.btn{font:inherit;font-weight:600;border-radius:.5rem;padding:.55rem 1.1rem;\
border:2px solid var(--accent);cursor:pointer}
button{background:var(--accent);color:#fff;margin:.75rem 0}
.btn{display:inline-block;background:#fff;color:var(--accent);text-decoration:none;\
margin:0 0 .5rem}
.links{display:flex;gap:.75rem;flex-wrap:wrap}
:focus-visible{outline:3px solid #1a4fa0;outline-offset:2px}
footer{color:var(--soft);font-size:.9rem;margin-top:2.5rem;padding-bottom:2rem}
[hidden]{display:none!important}
"""

SCRIPT = """\
(function(){"use strict";
var d=document,b=d.body,c=b.dataset,rtl=d.documentElement.dir==="rtl";
var start=c.start?+c.start:null,end=c.end?+c.end:null;
function $(i){return d.getElementById(i)}
function digits(n,w){var s=String(n);while(s.length<w)s="0"+s;
return s.replace(/[0-9]/g,function(x){return c.digits.charAt(+x)})}
function iso(t){return rtl?"\\u2068"+t+"\\u2069":t}
function put(i,p){var k=$(i).children;k[0].textContent=p[0];k[1].textContent=p[1];
k[2].textContent=p[2]}
function moment(ms){return new Intl.DateTimeFormat(c.intl,{weekday:"short",year:"numeric",
month:"short",day:"numeric",hour:"numeric",minute:"2-digit"}).format(new Date(ms))}
function zone(){try{var p=new Intl.DateTimeFormat(c.intl,{timeZoneName:"long"})
.formatToParts(new Date());for(var i=0;i<p.length;i++){if(p[i].type==="timeZoneName")
return p[i].value}}catch(e){}return Intl.DateTimeFormat().resolvedOptions().timeZone}
function when(){var w=$("when");if(start===null||end===null){w.textContent="";return}
try{w.textContent=c.window.replace("{start}",iso(moment(start))).replace("{end}",
iso(moment(end))).replace("{zone}",iso(zone()))}catch(e){}}
function tick(){var now=Date.now(),cd=$("countdown"),to=null;
if(start===null||end===null){$("phase").textContent=c.unset}
else if(now<start){$("phase").textContent=c.before;to=start}
else if(now<end){$("phase").textContent=c.during;to=end}
else{$("phase").textContent=c.over}
cd.hidden=to===null;if(to===null)return;var s=Math.max(0,Math.floor((to-now)/1000));
$("cd-d").textContent=digits(Math.floor(s/86400),1);
$("cd-h").textContent=digits(Math.floor(s%86400/3600),2);
$("cd-m").textContent=digits(Math.floor(s%3600/60),2);
$("cd-s").textContent=digits(s%60,2)}
when();tick();setInterval(tick,1000);
if(window.EventSource){var es=new EventSource(c.events);
es.onopen=function(){b.setAttribute("data-live","open")};
es.onerror=function(){b.setAttribute("data-live","retrying")};
es.onmessage=function(e){var m=JSON.parse(e.data);if(m.community)put("community-line",
m.community);put("pledged-line",m.pledged);
put("froze-line",m.froze);$("goal").textContent=m.goal;var p=$("bar");p.max=m.max;
p.value=m.value;if(m.start!==start||m.end!==end){start=m.start;end=m.end;when();tick()}}}
var btn=$("copy"),msg=$("message"),st=$("copied");btn.hidden=false;
function done(t){st.textContent=t}
function select(){var r=d.createRange();r.selectNodeContents(msg);var s=getSelection();
s.removeAllRanges();s.addRange(r)}
function fallback(){select();try{if(d.execCommand("copy")){done(c.copied);return}}catch(e){}
done(c.copyfail)}
btn.addEventListener("click",function(){st.textContent="";
if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(msg.textContent)
.then(function(){done(c.copied)},fallback)}else{fallback()}})})();
"""


@cache
def csp() -> str:
    """The page's Content-Security-Policy: its own inline style and script, nothing else."""

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    return (
        f"default-src 'none'; script-src 'sha256-{digest(SCRIPT)}'; "
        f"style-src 'sha256-{digest(STYLE)}'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'"
    )


def _intl_locale(translator: Translator) -> str:
    """The BCP 47 tag the browser formats dates with, in the digits the catalogs use."""
    latin = "".join(translator.number(n) for n in range(10)) == "0123456789"
    return f"{translator.locale}-u-nu-latn" if latin else translator.locale


def _countdown(ctx: PageContext, snapshot: Snapshot) -> tuple[str, int | None]:
    """The countdown's heading and the seconds it counts, as of the server's clock."""
    start, end = snapshot.start, snapshot.end
    if start is None or end is None:
        return _("The organizers have not announced the freeze dates yet."), None
    if ctx.now < start:
        return _("Time left until the freeze starts"), int((start - ctx.now).total_seconds())
    if ctx.now < end:
        return _("Time left until the freeze ends"), int((end - ctx.now).total_seconds())
    return _("The freeze is over. Thank you to everyone who took part!"), None


def _attributes(values: dict[str, str]) -> str:
    return " ".join(f'{name}="{_e(value)}"' for name, value in values.items())


def _counted(element: str, parts: list[str], big: bool) -> str:
    before, number, after = (_e(part) for part in parts)
    big_class = ' class="big"' if big else ""
    return (
        f'<p id="{element}-line"{big_class}>'
        f'<span>{before}</span><strong id="{element}" class="n">{number}</strong>'
        f"<span>{after}</span></p>"
    )


def render_page(snapshot: Snapshot, translator: Translator, ctx: PageContext) -> str:
    """The whole campaign page in one language, counts as of `snapshot`."""
    texts = live_texts(snapshot, translator, ctx.community)
    with i18n.use(translator):
        t = _page_texts(translator, ctx, snapshot)
    seconds = t["seconds"]
    remaining = seconds or 0
    values = (
        translator.number(remaining // 86400),
        _two(translator, remaining % 86400 // 3600),
        _two(translator, remaining % 3600 // 60),
        _two(translator, remaining % 60),
    )
    boxes = "".join(
        f'<div><span id="cd-{key}" class="n">{_e(value)}</span><span>{_e(unit)}</span></div>'
        for key, value, unit in zip("dhms", values, t["units"], strict=True)
    )
    links = []
    if ctx.telegram:
        links.append(f'<a class="btn" href="{_e(ctx.telegram)}">{_e(t["telegram"])}</a>')
    if ctx.discord:
        links.append(f'<a class="btn" href="{_e(ctx.discord)}">{_e(t["discord"])}</a>')
    join = (
        f'<section aria-labelledby="join-h"><h2 id="join-h">{_e(t["join"])}</h2>'
        f'<p class="links">{"".join(links)}</p></section>'
        if links
        else ""
    )
    current = ' aria-current="page"'
    nav = "".join(
        f'<li><a href="{_e(ctx.root + code)}/" lang="{_e(code)}" hreflang="{_e(code)}"'
        f"{current if code == ctx.language else ''}>{_e(language_name(code))}</a></li>"
        for code in ctx.languages
    )
    alternates = "".join(
        f'<link rel="alternate" hreflang="{_e(code)}" href="{_e(ctx.root + code)}/">'
        for code in ctx.languages
    )
    canonical = (
        f'<link rel="canonical" href="{_e(ctx.canonical + ctx.language)}/">'
        if ctx.canonical and ctx.community is None
        else ""
    )
    lead = _e(t["lead"])
    counts = _counted("pledged", texts["pledged"], ctx.community is None) + _counted(
        "froze", texts["froze"], False
    )
    if ctx.community is not None:  # unlisted: no search engine, the coalition one link away
        canonical = '<meta name="robots" content="noindex">'
        counts = _counted("community", texts["community"], True) + counts
        lead = (
            f'{_e(t["community_lead"])} <a href="{_e(ctx.root)}../../{_e(ctx.language)}/">'
            f"{_e(t['campaign_link'])}</a>"
        )
    data = {
        "data-events": f"{ctx.root}{ctx.language}/events",
        "data-digits": "".join(translator.number(n) for n in range(10)),
        "data-intl": _intl_locale(translator),
        "data-start": "" if texts["start"] is None else str(texts["start"]),
        "data-end": "" if texts["end"] is None else str(texts["end"]),
        **t["data"],
    }
    return (
        "<!doctype html>\n"
        f'<html lang="{_e(translator.locale)}" dir="{"rtl" if translator.rtl else "ltr"}">'
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(t['title'])}</title>"
        f'<meta name="description" content="{_e(t["lead"])}">'
        f"{canonical}{alternates}<style>{STYLE}</style></head>\n"
        f"<body {_attributes(data)}>"
        f'<header><nav aria-label="{_e(t["languages"])}"><ul>{nav}</ul></nav>'
        f'<h1>{_e(t["name"])}</h1><p class="lead">{lead}</p></header>\n'
        '<main><section id="counts" aria-live="polite">'
        f"{counts}"
        f'<progress id="bar" max="{texts["max"]}" value="{texts["value"]}" '
        'aria-labelledby="goal"></progress>'
        f'<p id="goal">{_e(texts["goal"])}</p></section>\n'
        f'<section aria-labelledby="phase"><h2 id="phase">{_e(t["heading"])}</h2>'
        f'<div id="countdown" class="cd"{"" if seconds is not None else " hidden"}>'
        f'{boxes}</div><p id="when">{_e(t["window_now"])}</p></section>\n'
        '<section aria-labelledby="share-h">'
        f'<h2 id="share-h">{_e(t["share"])}</h2>'
        f'<blockquote id="message">{_e(ctx.message)}</blockquote>'
        f'<p><button type="button" id="copy" hidden>{_e(t["copy"])}</button> '
        '<span id="copied" role="status"></span></p></section>\n'
        f"{join}</main>\n"
        f"<footer><p>{_e(t['privacy'])}</p></footer>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _page_texts(translator: Translator, ctx: PageContext, snapshot: Snapshot) -> dict[str, Any]:
    """Every text of the page but the counts, in the current locale."""
    heading, seconds = _countdown(ctx, snapshot)
    window_now = ""
    if snapshot.start is not None and snapshot.end is not None:
        window_now = _(
            "The freeze runs from {start} to {end} ({zone}).",
            start=translator.when(snapshot.start, ctx.zone),
            end=translator.when(snapshot.end, ctx.zone),
            zone=translator.zone_name(ctx.zone),
        )
    return {
        "name": _("Stop Hate For Profit"),
        "title": _("Stop Hate For Profit: live count"),
        "lead": _(
            "For {length}, volunteers freeze their Instagram and Facebook accounts: no posts, "
            "no likes, no scrolling. Together we show the company that profiting from hate "
            "and disinformation costs it our attention.",
            length=Raw(duration(ctx.length)),
        ),
        "community_lead": _(
            "A community's count, next to the whole coalition's: counts only, never names."
        ),
        "campaign_link": _("The campaign's page"),
        "languages": _("Languages"),
        "heading": heading,
        "seconds": seconds,
        "window_now": window_now,
        "units": (_("days"), _("hours"), _("minutes"), _("seconds")),
        "share": _("After the freeze, post this message"),
        "copy": _("Copy the message"),
        "join": _("Pledge to freeze"),
        "telegram": _("Pledge on Telegram"),
        "discord": _("Pledge on Discord"),
        "privacy": _("This page shows counts only, never who pledged."),
        "data": {
            "data-window": _(
                "The freeze runs from {start} to {end} ({zone}).",
                start=Raw("{start}"),
                end=Raw("{end}"),
                zone=Raw("{zone}"),
            ),
            "data-unset": _("The organizers have not announced the freeze dates yet."),
            "data-before": _("Time left until the freeze starts"),
            "data-during": _("Time left until the freeze ends"),
            "data-over": _("The freeze is over. Thank you to everyone who took part!"),
            "data-copied": _("Copied."),
            "data-copyfail": _("Copying did not work: select the text and copy it yourself."),
        },
    }


def _two(translator: Translator, value: int) -> str:
    """A countdown field of two digits, in the catalogs' digits."""
    return translator.number(value // 10) + translator.number(value % 10)


def render_not_found(translator: Translator, root: str) -> str:
    """A short page saying there is nothing at this address, in the reader's language."""
    with i18n.use(translator):
        title = _("Page not found")
        nothing = _("There is nothing at this address.")
        back = _("Go to the campaign page")
    return (
        "<!doctype html>\n"
        f'<html lang="{_e(translator.locale)}" dir="{"rtl" if translator.rtl else "ltr"}">'
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{_e(title)}</h1><p>{_e(nothing)}</p>"
        f'<p><a href="{_e(root + translator.locale)}/">{_e(back)}</a></p></main></body></html>\n'
    )
