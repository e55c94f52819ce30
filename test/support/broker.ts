// A broker in the test's own process standing in for the county center's (aedes, as the embedded
// broker, but open to any client: the center's broker and its ACLs are not what these tests test).
import { Aedes } from "aedes";
import { serveBroker, type EmbeddedBroker } from "../../src/uplink/broker.ts";

export async function openBroker(host: string, port: number): Promise<EmbeddedBroker> {
  return serveBroker(await Aedes.createBroker(), host, port);
}
