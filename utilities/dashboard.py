"""The operators' web dashboard that ``fixgw up`` serves (issue 15, item 4).

What it shows, and where it reads it (it never writes to a node's log):

- nodes (role, alive, head, lag per origin) and FIX sessions (who is logged on where, the
  sequence numbers): the nodes' status files, through the ``status`` callable the CLI
  passes in (``fixgw status --json`` is the same function);
- the order blotter (statuses from the fold, ``utilities.status``) and positions and cash per
  account (``utilities.books``, as the firm folds them): read-only LMDB reads of the firm
  node's log, which holds every customer and street record, in a worker thread so the event
  loop keeps serving. Each read takes only the records new since the last one, per origin up
  to its high-water mark (a record above a gap waits for the gap to fill); the books are
  folded again only when records came, and at most every ``FOLD_PACE`` times the last fold's
  duration, so that a big log under load costs the dashboard a bounded share of a CPU; and
  only while somebody looks (a page connected, or ``/api/state`` asked within
  ``WATCH_GRACE_S``): with nobody watching, the firm's log is not read at all. Measured with
  ``fixgw bench --config ... --rate 100``, the dashboard nobody looked at cost 0.30 ms of CPU
  per order (3% of the cluster's), reading and folding records for no one;
- replication lag over time: a ring of the last ``history`` samples of each node's total lag.

Starlette on uvicorn; the page is one HTML document with inline JS and SVG (no CDN: the
machines it runs on may have no internet) fed by server-sent events, one snapshot per
``interval`` seconds. ``/api/state`` gives the same snapshot as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from replication.errors import ReplicationError
from replication.log import RecordLog
from replication.record import Record
from utilities.books import Books, dec_str
from utilities.firm import books_summary
from utilities.status import OrderStatus

log = logging.getLogger(__name__)

BLOTTER_ROWS = 200  # the most recent orders shown
FOLD_PACE = 5.0     # fold the books again no sooner than 5x the last fold's duration
WATCH_GRACE_S = 30.0  # after an /api/state request, keep the books fresh this long


def _order_row(st: OrderStatus) -> dict[str, Any]:
    def d(v: Any) -> str | None:
        return None if v is None else dec_str(v)

    return {"txn": st.txn, "account": st.account, "symbol": st.symbol, "side": st.side,
            "ord_status": st.ord_status, "order_qty": d(st.order_qty), "cash_order_qty": d(st.cash_order_qty),
            "price": d(st.price), "cum_qty": d(st.cum_qty), "leaves_qty": d(st.leaves_qty),
            "avg_px": d(st.avg_px), "cl_ord_id": st.cl_ord_id, "session": st.session, "venue": st.venue,
            "street": st.street, "text": st.text}


class DashboardSource:
    """Builds the snapshots the page shows; ``refresh()`` is blocking (run it in a thread)."""

    def __init__(self, status: Callable[[], dict[str, Any]], firm_log: Path, *, history: int = 300) -> None:
        self._status = status
        self._firm_log = firm_log
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._records: list[Record] = []
        self._read_upto: dict[str, int] = {}    # per origin: records 1..n are in _records
        self._stale = False                     # records came since the last fold
        self._next_fold = 0.0                   # monotonic time of the earliest next fold
        self._orders: list[dict[str, Any]] = []
        self._books: dict[str, Any] = {}
        self._books_error = ""
        self.snapshot: dict[str, Any] = {"seq": 0}
        self._lock = threading.Lock()  # the refresher's thread and a request's may both refresh

    def refresh(self, *, books: bool = True) -> dict[str, Any]:
        """A new snapshot; ``books=False`` leaves the blotter and books as they were (nobody
        is looking: the firm's log is not read). One at a time: a request that reads the books
        must not have its snapshot replaced by an older one built meanwhile."""
        with self._lock:
            return self._refresh(books)

    def _refresh(self, books: bool) -> dict[str, Any]:
        st = self._status()
        now = time.time()
        nodes, sessions = [], []
        for n in st.get("nodes", []):
            lag = {k: int(v) for k, v in (n.get("lag") or {}).items()}
            nodes.append({"name": n["name"], "role": n["role"], "state": n.get("state"),
                          "alive": n.get("state") == "ready", "head": n.get("own_seq", 0), "lag": lag,
                          "hwm": n.get("hwm", {}), "connected": bool(n.get("connected")),
                          "metrics_url": n.get("metrics_url")})
            seqs = n.get("fix_seqnums") or {}
            for sid, on in sorted((n.get("fix_sessions") or {}).items()):
                nxt = seqs.get(sid) or [None, None]
                sessions.append({"node": n["name"], "session": sid, "logged_on": bool(on),
                                 "next_sender_seq": nxt[0], "next_target_seq": nxt[1]})
        self._history.append({"t": now, "lag": {n["name"]: sum(n["lag"].values()) for n in nodes}})
        if books:
            self._read_firm_log()
        seq = int(self.snapshot.get("seq", 0)) + 1
        self.snapshot = {"seq": seq, "at": now, "cluster": st.get("cluster"), "nodes": nodes,
                         "sessions": sessions, "venues": st.get("venues", []), "orders": self._orders,
                         "books": self._books, "books_error": self._books_error,
                         "lag_history": list(self._history)}
        return self.snapshot

    def _read_firm_log(self) -> None:
        if not (self._firm_log / "data.mdb").exists():
            self._books_error = f"no firm log at {self._firm_log} yet"
            return
        try:
            with RecordLog(self._firm_log, readonly=True) as firm_log:
                for origin, state in firm_log.origin_states().items():
                    done = self._read_upto.get(origin, 0)
                    if state.hwm > done:
                        self._records.extend(firm_log.iter_origin(origin, done + 1, state.hwm))
                        self._read_upto[origin] = state.hwm
                        self._stale = True
        except ReplicationError as exc:
            self._books_error = str(exc)
            return
        if not self._stale or time.monotonic() < self._next_fold:
            return
        started = time.monotonic()
        books = Books.from_records(self._records)
        orders = sorted(books.orders().values(), key=lambda s: s.last_hlc, reverse=True)[:BLOTTER_ROWS]
        self._orders = [_order_row(o) for o in orders]
        self._books = books_summary(books)
        self._books_error = ""
        self._stale = False
        self._next_fold = time.monotonic() + FOLD_PACE * (time.monotonic() - started)


def create_app(source: DashboardSource, *, interval: float = 1.0) -> Starlette:
    """The Starlette application: ``/`` (the page), ``/events`` (SSE), ``/api/state`` (JSON)."""
    changed = asyncio.Condition()
    viewers = 0                 # pages connected to /events
    asked_at = -WATCH_GRACE_S   # monotonic time of the last /api/state

    def watched() -> bool:
        return viewers > 0 or time.monotonic() - asked_at < WATCH_GRACE_S

    async def refresher() -> None:
        while True:
            try:
                await asyncio.to_thread(lambda: source.refresh(books=watched()))
            except Exception:  # a bad status file must not end the dashboard
                log.exception("dashboard refresh failed")
            async with changed:
                changed.notify_all()
            await asyncio.sleep(interval)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def state(request: Request) -> JSONResponse:
        nonlocal asked_at
        fresh = watched()
        asked_at = time.monotonic()
        if not fresh:  # nobody was looking: the books are stale, read them now
            await asyncio.to_thread(source.refresh)
        return JSONResponse(source.snapshot)

    async def events(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            nonlocal viewers
            fresh = watched()
            viewers += 1
            try:
                if not fresh:
                    await asyncio.to_thread(source.refresh)
                yield f"data: {json.dumps(source.snapshot)}\n\n"
                while not await request.is_disconnected():
                    async with changed:
                        try:
                            await asyncio.wait_for(changed.wait(), 15)
                        except TimeoutError:
                            yield ": keep-alive\n\n"
                            continue
                    yield f"data: {json.dumps(source.snapshot)}\n\n"
            finally:
                viewers -= 1

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(lambda: source.refresh(books=False))
        task = asyncio.create_task(refresher())
        try:
            yield
        finally:
            task.cancel()

    return Starlette(routes=[Route("/", page), Route("/events", events), Route("/api/state", state)],
                     lifespan=lifespan)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fixgw dashboard</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:18px}h2{font-size:15px;margin:1.2em 0 .3em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f3f3f3}.up{color:#080}.down{color:#b00}#lag-chart{border:1px solid #ccc;background:#fafafa}
.grid{display:flex;gap:2em;flex-wrap:wrap}
</style></head><body>
<h1>fixgw <span id="cluster"></span> <small id="updated">connecting...</small></h1>
<div class="grid"><div>
<h2>Nodes</h2>
<table id="nodes"><thead><tr><th>node</th><th>role</th><th>state</th><th>broker</th><th>head</th>
<th>lag per origin</th></tr></thead><tbody></tbody></table>
<h2>FIX sessions</h2>
<table id="sessions"><thead><tr><th>node</th><th>session</th><th>logged on</th><th>next out</th>
<th>next in</th></tr></thead><tbody></tbody></table>
</div><div>
<h2>Replication lag (records behind, per node)</h2>
<svg id="lag-chart" width="520" height="200" viewBox="0 0 520 200"></svg>
<div id="lag-legend"></div>
<h2>Positions and cash</h2>
<table id="books"><thead><tr><th>account</th><th>cash</th><th>buying power</th><th>positions</th>
</tr></thead><tbody></tbody></table>
</div></div>
<h2>Orders</h2>
<table id="orders"><thead><tr><th>txn</th><th>account</th><th>symbol</th><th>side</th><th>status</th>
<th>qty</th><th>price</th><th>cum</th><th>leaves</th><th>avg px</th><th>ClOrdID</th><th>session</th>
</tr></thead><tbody></tbody></table>
<script>
"use strict";
const STATUS={"0":"New","1":"Partially filled","2":"Filled","3":"Done for day","4":"Canceled",
 "5":"Replaced","6":"Pending cancel","8":"Rejected","9":"Suspended","A":"Pending new","C":"Expired",
 "E":"Pending replace"};
const SIDE={"1":"Buy","2":"Sell","5":"Sell short"};
const COLORS=["#1f77b4","#d62728","#2ca02c","#ff7f0e","#9467bd","#8c564b","#e377c2","#17becf"];
window.dashboardTicks=0;
function cell(tr,text,cls){const td=document.createElement("td");td.textContent=text==null?"":String(text);
 if(cls)td.className=cls;tr.appendChild(td);return td;}
function fill(id,rows,build){const body=document.querySelector("#"+id+" tbody");
 const frag=document.createDocumentFragment();for(const r of rows){const tr=document.createElement("tr");
 build(tr,r);frag.appendChild(tr);}body.replaceChildren(frag);}
function chart(history,nodes){const svg=document.getElementById("lag-chart");const W=520,H=200,P=30;
 const names=nodes.map(n=>n.name);let max=1;for(const h of history)for(const k of names)max=Math.max(max,h.lag[k]||0);
 const t0=history.length?history[0].t:0,t1=history.length?history[history.length-1].t:1,span=Math.max(1,t1-t0);
 const ns="http://www.w3.org/2000/svg";svg.replaceChildren();
 const axis=document.createElementNS(ns,"path");axis.setAttribute("d",`M${P} 5 V${H-P} H${W-5}`);
 axis.setAttribute("stroke","#888");axis.setAttribute("fill","none");svg.appendChild(axis);
 const lab=document.createElementNS(ns,"text");lab.setAttribute("x",2);lab.setAttribute("y",12);
 lab.setAttribute("font-size","10");lab.textContent=String(max);svg.appendChild(lab);
 const legend=document.getElementById("lag-legend");legend.replaceChildren();
 names.forEach((name,i)=>{const pts=history.map(h=>{const x=P+(h.t-t0)/span*(W-P-5);
  const y=(H-P)-(h.lag[name]||0)/max*(H-P-5);return x.toFixed(1)+","+y.toFixed(1);}).join(" ");
  const pl=document.createElementNS(ns,"polyline");pl.setAttribute("points",pts);pl.setAttribute("fill","none");
  pl.setAttribute("stroke",COLORS[i%COLORS.length]);pl.setAttribute("data-node",name);svg.appendChild(pl);
  const s=document.createElement("span");s.style.color=COLORS[i%COLORS.length];s.textContent=" \u25A0 "+name;
  legend.appendChild(s);});}
function render(s){window.dashboardTicks+=1;window.dashboardState=s;
 document.getElementById("cluster").textContent=s.cluster||"";
 document.getElementById("updated").textContent="updated "+new Date(s.at*1000).toLocaleTimeString()+" (#"+s.seq+")";
 fill("nodes",s.nodes||[],(tr,n)=>{tr.dataset.node=n.name;tr.dataset.alive=n.alive;cell(tr,n.name);cell(tr,n.role);
  cell(tr,n.state,n.alive?"up":"down");cell(tr,n.connected?"up":"down",n.connected?"up":"down");cell(tr,n.head);
  cell(tr,Object.entries(n.lag).map(([o,v])=>o+":"+v).join(" "));});
 fill("sessions",s.sessions||[],(tr,x)=>{tr.dataset.session=x.session;tr.dataset.node=x.node;cell(tr,x.node);
  cell(tr,x.session);cell(tr,x.logged_on?"yes":"no",x.logged_on?"up":"down");cell(tr,x.next_sender_seq);
  cell(tr,x.next_target_seq);});
 fill("books",Object.entries(s.books||{}),(tr,[a,b])=>{tr.dataset.account=a;cell(tr,a);cell(tr,b.cash);
  cell(tr,b.buying_power);cell(tr,Object.entries(b.positions).map(([k,v])=>k+" "+v).join(", "));});
 fill("orders",s.orders||[],(tr,o)=>{tr.dataset.txn=o.txn;tr.dataset.status=o.ord_status;cell(tr,o.txn);
  cell(tr,o.account);cell(tr,o.symbol);cell(tr,SIDE[o.side]||o.side);cell(tr,STATUS[o.ord_status]||o.ord_status);
  cell(tr,o.order_qty!=null?o.order_qty:(o.cash_order_qty!=null?"$"+o.cash_order_qty:""));cell(tr,o.price);
  cell(tr,o.cum_qty);cell(tr,o.leaves_qty);cell(tr,o.avg_px);cell(tr,o.cl_ord_id);cell(tr,o.session);});
 chart(s.lag_history||[],s.nodes||[]);}
const es=new EventSource("events");
es.onmessage=e=>{try{render(JSON.parse(e.data));}catch(err){console.error(err);}};
es.onerror=()=>{document.getElementById("updated").textContent="disconnected, retrying...";};
</script></body></html>
"""
