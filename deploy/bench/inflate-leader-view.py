#!/usr/bin/env python3
"""Inflates a stopped `zhzj up --demo` SQLite store for the leader-view measurement in
BENCHMARKS.md: 66 seeded copies of every demo case (checklist row, lifecycle row, responsible
units) with ten activities each, straight into the generation-1 tables, so the store holds
20,100 cases and about 198,000 leader activities. The rows are not in the log: a projector that
rebuilds (another shape version) drops them.

    deploy/bench/inflate-leader-view.py DATA_DIR/zhzj.sqlite [--shape4]

--shape4 also creates the activity index the lifecycle projection's shape 4 declares and records
shape 4, so that a build with it serves the same rows without rebuilding them away.
"""
import sqlite3, uuid, random, sys
random.seed(7)
db=sqlite3.connect(sys.argv[1])
def cols(t): return [r[1] for r in db.execute(f"pragma table_info({t})")]
cr=cols('checklist_rows_g1'); cl=cols('case_lifecycle_g1'); la=cols('leader_activities_g1'); cu=cols('case_units_g1')
rows=db.execute("select * from checklist_rows_g1").fetchall()
life={r[cl.index('case_id')]:r for r in db.execute("select * from case_lifecycle_g1")}
units={}
for r in db.execute("select * from case_units_g1"): units.setdefault(r[cu.index('case_id')],[]).append(r)
acts=db.execute("select * from leader_activities_g1").fetchall()
leaders=[r[0] for r in db.execute("select leader_id from org_leaders")]
pos=10**9
ci=cr.index('case_id'); li=cr.index('leader_id')
for k in range(66):
    for r in rows:
        new=str(uuid.UUID(int=random.getrandbits(128), version=4)); r=list(r); old=r[ci]; r[ci]=new
        if r[li] is None and random.random()<0.7: r[li]=random.choice(leaders)
        db.execute(f"insert into checklist_rows_g1 values ({','.join('?'*len(r))})", r)
        if old in life:
            l=list(life[old]); l[cl.index('case_id')]=new
            db.execute(f"insert into case_lifecycle_g1 values ({','.join('?'*len(l))})", l)
        for u in units.get(old,[]):
            u=list(u); u[cu.index('case_id')]=new
            db.execute(f"insert into case_units_g1 values ({','.join('?'*len(u))})", u)
        for j in range(10):
            pos+=1
            a=list(random.choice(acts)); a[la.index('position')]=pos; a[la.index('case_id')]=new
            a[la.index('leader_id')]=r[li] or random.choice(leaders)
            a[la.index('held_on')]=f"2026-{random.randint(1,11):02d}-{random.randint(1,28):02d}"
            db.execute(f"insert into leader_activities_g1 values ({','.join('?'*len(a))})", a)
if '--shape4' in sys.argv[2:]:
    db.execute("CREATE INDEX leader_activities_g1_case ON leader_activities_g1 (case_id, leader_id, held_on)")
    db.execute("update projection_checkpoints set settings='shape=4;limits=' where projection='lifecycle'")
db.commit()
print(db.execute("select count(*) from checklist_rows").fetchone(), db.execute("select count(*) from leader_activities").fetchone())
