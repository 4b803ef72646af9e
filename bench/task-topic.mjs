// The run's own Kafka topics: created before the service starts (so the service finds them and
// creates nothing), filled with task events by a kafkajs producer, and deleted at the end.
import kafkajs from 'kafkajs';

const { Kafka, Partitioners, logLevel } = kafkajs;

export function benchKafka(brokers, clientId) {
  return new Kafka({
    clientId,
    brokers,
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { retries: 5 },
  });
}

export function taskProducer(kafka) {
  // The default partitioner is Java's murmur2 on the key, as any producer of task events uses.
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
}

/**
 * The source topic with `partitions` partitions and its dead-letter topic. `cleanupPolicy` is the
 * service's own ("compact") unless a run needs every event kept ("delete").
 */
export async function createTaskTopics(admin, { topic, dlqTopic, partitions, cleanupPolicy }) {
  await admin.createTopics({
    waitForLeaders: true,
    timeout: 30000,
    topics: [
      { topic, numPartitions: partitions, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: cleanupPolicy }] },
      { topic: dlqTopic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
    ],
  });
}

export async function deleteTopics(admin, topics) {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((topic) => existing.has(topic));
  if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 30000 });
}

export async function deleteGroups(admin, groupIds) {
  // A group that never committed does not exist on the broker: only existing groups are deleted.
  const { groups } = await admin.listGroups();
  const existing = new Set(groups.map(({ groupId }) => groupId));
  const present = groupIds.filter((groupId) => existing.has(groupId));
  if (present.length > 0) await admin.deleteGroups(present);
}

/**
 * Produces `messages` ({ key, value }) in chunks with a few sends in flight. Callers that need
 * per-task order across calls await one call before the next (a task appears once per call).
 */
export async function produceMessages(producer, topic, messages, { chunkSize = 500, inFlight = 4 } = {}) {
  let next = 0;
  const sender = async () => {
    while (next < messages.length) {
      const chunk = messages.slice(next, next + chunkSize);
      next += chunkSize;
      await producer.send({ topic, messages: chunk, acks: -1 });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, sender));
}

/** The number of events in the topic: the sum of its partitions' high watermarks (it starts empty). */
export async function eventsInTopic(admin, topic) {
  const partitions = await admin.fetchTopicOffsets(topic);
  return partitions.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
}
