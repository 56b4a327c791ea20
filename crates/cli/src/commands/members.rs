//! `switchyard members list|add-learner|promote|remove`: Raft membership.

use serde_json::json;
use switchyard_proto::admin as apb;

use super::Ctx;
use super::status::{members_json, members_table};
use crate::args::MembersCommand;
use crate::output::{print_json, print_text};

/// Runs a `members` subcommand.
pub async fn run(ctx: &Ctx, command: MembersCommand) -> anyhow::Result<()> {
    match command {
        MembersCommand::List => {
            let request = apb::ListMembersRequest { local: ctx.local };
            let r = ctx
                .admin
                .call("ListMembers", request, |mut c, r| async move {
                    c.list_members(r).await
                })
                .await?;
            if ctx.json {
                print_json(&json!({
                    "members": members_json(&r.members),
                    "leader_id": r.leader_id,
                    "applied_index": r.applied_index,
                }));
            } else {
                print_text(&members_table(&r.members, r.leader_id).render());
            }
        }
        MembersCommand::AddLearner { id, addr } => {
            check_node_id(id)?;
            let request = apb::AddLearnerRequest {
                node_id: id,
                addr: addr.clone(),
            };
            let r = ctx
                .admin
                .call("AddLearner", request, |mut c, r| async move {
                    c.add_learner(r).await
                })
                .await?;
            ctx.print_committed(
                &format!("node {id} ({addr}) added as a learner; promote it once it has caught up"),
                r.index,
            );
        }
        MembersCommand::Promote { id } => {
            check_node_id(id)?;
            let request = apb::PromoteMemberRequest { node_id: id };
            let r = ctx
                .admin
                .call("PromoteMember", request, |mut c, r| async move {
                    c.promote_member(r).await
                })
                .await?;
            ctx.print_committed(&format!("node {id} is now a voter"), r.index);
        }
        MembersCommand::Remove { id } => {
            check_node_id(id)?;
            let request = apb::RemoveMemberRequest { node_id: id };
            let r = ctx
                .admin
                .call("RemoveMember", request, |mut c, r| async move {
                    c.remove_member(r).await
                })
                .await?;
            ctx.print_committed(&format!("node {id} removed from the cluster"), r.index);
        }
    }
    Ok(())
}

fn check_node_id(id: u64) -> anyhow::Result<()> {
    if id == 0 {
        anyhow::bail!("invalid `node_id`: must be >= 1");
    }
    Ok(())
}
