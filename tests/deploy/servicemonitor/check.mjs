// Validates ServiceMonitor objects, given as one JSON array on stdin, against the Prometheus
// Operator's ServiceMonitor schema (@kubernetes-models/prometheus-operator, generated from the
// operator's CRD). deploy/check.sh converts deploy/kubernetes/servicemonitor.yaml to JSON and
// runs this; exit 1 with the errors if any object does not validate.
import { readFileSync } from "node:fs";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = false;
for (const object of objects) {
  const name = `${object.kind}/${object.metadata?.name}`;
  try {
    new ServiceMonitor(object).validate();
    console.log(`INFO ${name} passed against the ServiceMonitor schema`);
  } catch (e) {
    failed = true;
    console.log(`ERROR ${name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
