//! `switchyard status`: the answering node, the leader, term, indexes and members.

use serde_json::json;
use switchyard_proto::admin as apb;

use super::Ctx;
use crate::output::{Fields, Table, enum_name, print_json, print_line, print_text};

/// A member's role as its name (`VOTER`).
pub fn role_name(member: &apb::Member) -> String {
    enum_name(member.role().as_str_name(), "MEMBER_ROLE_")
}

/// The members as a table, the leader marked.
pub fn members_table(members: &[apb::Member], leader_id: Option<u64>) -> Table {
    let mut table = Table::new(&["ID", "ADDRESS", "ROLE", "LEADER"]);
    for m in members {
        let leader = if Some(m.node_id) == leader_id {
            "*"
        } else {
            ""
        };
        table.row(vec![
            m.node_id.to_string(),
            m.addr.clone(),
            role_name(m),
            leader.into(),
        ]);
    }
    table
}

/// The members as JSON objects.
pub fn members_json(members: &[apb::Member]) -> serde_json::Value {
    members
        .iter()
        .map(|m| json!({ "node_id": m.node_id, "addr": m.addr, "role": role_name(m) }))
        .collect()
}

/// Runs `switchyard status`.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let request = apb::StatusRequest { local: ctx.local };
    let s = ctx
        .admin
        .call(
            "Status",
            request,
            |mut c, r| async move { c.status(r).await },
        )
        .await?;
    let state = enum_name(s.state().as_str_name(), "NODE_STATE_");
    if ctx.json {
        print_json(&json!({
            "node_id": s.node_id,
            "state": state,
            "leader_id": s.leader_id,
            "term": s.term,
            "commit_index": s.commit_index,
            "applied_index": s.applied_index,
            "last_log_index": s.last_log_index,
            "snapshot_index": s.snapshot_index,
            "members": members_json(&s.members),
        }));
        return Ok(());
    }
    let mut fields = Fields::new();
    fields
        .add("node", format!("{} ({state})", s.node_id))
        .add(
            "leader",
            s.leader_id
                .map_or_else(|| "none known".to_string(), |l| l.to_string()),
        )
        .add("term", s.term.to_string())
        .add("commit index", s.commit_index.to_string())
        .add("applied index", s.applied_index.to_string())
        .add("last log index", s.last_log_index.to_string())
        .add(
            "snapshot index",
            s.snapshot_index
                .map_or_else(|| "-".to_string(), |i| i.to_string()),
        );
    print_text(&fields.render());
    print_line("");
    print_text(&members_table(&s.members, s.leader_id).render());
    Ok(())
}
