import kafkajs from 'kafkajs';
import type { Admin } from 'kafkajs';

/** A consumer group as the coordinator describes it: its state and each member's partitions of `topic`. */
export interface GroupAssignment {
  readonly state: string;
  readonly members: { readonly memberId: string; readonly partitions: readonly number[] }[];
}

export async function describeGroupAssignment(admin: Admin, groupId: string, topic: string): Promise<GroupAssignment> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  return {
    state: group?.state ?? 'Unknown',
    members: (group?.members ?? []).map(({ memberId, memberAssignment }) => {
      const decoded = memberAssignment.length > 0 ? kafkajs.AssignerProtocol.MemberAssignment.decode(memberAssignment) : null;
      return { memberId, partitions: [...(decoded?.assignment[topic] ?? [])].sort((a, b) => a - b) };
    }),
  };
}

/** Whether the group is Stable with exactly `members` members that own every one of `partitions` partitions, each once. */
export function ownsAllPartitions(group: GroupAssignment, members: number, partitions: number): boolean {
  const owned = group.members.flatMap((member) => member.partitions);
  return (
    group.state === 'Stable' &&
    group.members.length === members &&
    group.members.every((member) => member.partitions.length > 0) &&
    owned.length === partitions &&
    new Set(owned).size === partitions
  );
}
