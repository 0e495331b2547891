"""A small evaluator of deploy/aws/waconnect.yaml for scripts/check_ops.sh: resolves the
intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split,
Fn::Select, Fn::If, Fn::Equals, Fn::Not) for given parameters, Region and account, the
way CloudFormation would, so the checks can read the IAM policy and the stack outputs as
they will be deployed. Physical names follow the resources' name properties (every named
resource in the template has one); anything it does not know raises, never guesses.
"""
from cfnlint.decode import cfn_yaml

NO_VALUE = object()

# Ref of a resource -> its physical id, and GetAtt attributes, by resource type.
def _queue_url(region, account, name):
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


class Stack:
    def __init__(self, path, parameters=None, region="eu-west-1", account="111122223333",
                 partition="aws"):
        self.template = cfn_yaml.load(path)
        self.region, self.account, self.partition = region, account, partition
        self.params = {}
        for name, spec in self.template.get("Parameters", {}).items():
            value = (parameters or {}).get(name, spec.get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} has no default: pass a value")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            self.params[name] = value
        self.conditions = {}
        for name, expr in self.template.get("Conditions", {}).items():
            self.conditions[name] = bool(self.eval(expr))

    # -- names ---------------------------------------------------------------------------
    def resource(self, logical):
        return self.template["Resources"][logical]

    def _name(self, logical, prop):
        value = self.eval(self.resource(logical)["Properties"].get(prop))
        if not isinstance(value, str):
            raise ValueError(f"{logical} has no {prop}: cannot know its physical name")
        return value

    def ref(self, name):
        pseudo = {
            "AWS::Region": self.region, "AWS::AccountId": self.account,
            "AWS::Partition": self.partition, "AWS::NoValue": NO_VALUE,
            "AWS::StackName": "waconnect",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        kind = self.resource(name)["Type"]
        if kind == "AWS::SQS::Queue":
            return _queue_url(self.region, self.account, self._name(name, "QueueName"))
        if kind == "AWS::SNS::Topic":
            return self.arn("sns", self._name(name, "TopicName"))
        if kind in ("AWS::DynamoDB::Table",):
            return self._name(name, "TableName")
        if kind == "AWS::S3::Bucket":
            return self._name(name, "BucketName")
        if kind == "AWS::IAM::Role":
            return self._name(name, "RoleName")
        if kind == "AWS::IAM::ManagedPolicy":
            # CloudFormation generates the name: only its shape is known.
            return f"arn:{self.partition}:iam::{self.account}:policy/<generated {name}>"
        raise ValueError(f"Ref {name}: resource type {kind} not known to scripts/ops/cfn.py")

    def arn(self, service, resource):
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def get_att(self, name, attribute):
        kind = self.resource(name)["Type"]
        if kind == "AWS::SQS::Queue":
            queue = self._name(name, "QueueName")
            return {"Arn": self.arn("sqs", queue), "QueueName": queue,
                    "QueueUrl": _queue_url(self.region, self.account, queue)}[attribute]
        if kind == "AWS::SNS::Topic":
            topic = self._name(name, "TopicName")
            return {"TopicArn": self.arn("sns", topic), "TopicName": topic}[attribute]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return self.arn("dynamodb", "table/" + self._name(name, "TableName"))
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:{self.partition}:s3:::{self._name(name, 'BucketName')}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{self.partition}:iam::{self.account}:role/{self._name(name, 'RoleName')}"
        raise ValueError(f"GetAtt {name}.{attribute} ({kind}) not known to scripts/ops/cfn.py")

    # -- intrinsic functions -------------------------------------------------------------
    def _sub(self, template, variables):
        out, i = [], 0
        while i < len(template):
            j = template.find("${", i)
            if j < 0:
                out.append(template[i:])
                break
            out.append(template[i:j])
            k = template.index("}", j)
            name = template[j + 2:k]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                out.append(str(self.get_att(*name.split(".", 1))))
            else:
                out.append(str(self.ref(name)))
            i = k + 1
        return "".join(out)

    def eval(self, node):
        if isinstance(node, list):
            values = [self.eval(v) for v in node]
            return [v for v in values if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    variables = {k: self.eval(v) for k, v in arg[1].items()}
                    return self._sub(arg[0], variables)
                return self._sub(arg, {})
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.eval(arg[1]))
            if key == "Fn::Split":
                return self.eval(arg[1]).split(arg[0])
            if key == "Fn::Select":
                return self.eval(arg[1])[int(self.eval(arg[0]))]
            if key == "Fn::If":
                return self.eval(arg[1] if self.conditions[arg[0]] else arg[2])
            if key == "Fn::Equals":
                return self.eval(arg[0]) == self.eval(arg[1])
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Condition":
                return self.conditions[arg]
            if key.startswith("Fn::"):
                raise ValueError(f"{key} not known to scripts/ops/cfn.py")
        return {k: self.eval(v) for k, v in node.items()}

    # -- views -----------------------------------------------------------------------------
    def outputs(self):
        return {name: self.eval(o["Value"]) for name, o in self.template.get("Outputs", {}).items()}

    def resources_of(self, kind):
        return {n: r for n, r in self.template["Resources"].items() if r["Type"] == kind
                and (("Condition" not in r) or self.conditions[r["Condition"]])}

    def role_statements(self, logical):
        """The statements of a role's inline policies, evaluated."""
        statements = []
        for policy in self.resource(logical)["Properties"].get("Policies", []):
            statements += self.eval(policy["PolicyDocument"])["Statement"]
        return statements
