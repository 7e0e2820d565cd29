// Grants ACLs through Kafka's public Admin API (run by `broker start --security sasl_ssl`).
// Usage: java -cp 'libs/*' Grant.java ADMIN_PROPERTIES PRINCIPAL ACL_FILE
// Each line of ACL_FILE: RESOURCE_TYPE PATTERN_TYPE NAME OPERATION, e.g. "TOPIC LITERAL alerts ALL".
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Grant {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Path.of(args[0]))) {
            props.load(in);
        }
        List<AclBinding> acls = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[2]))) {
            String[] f = line.trim().split("\\s+");
            if (f.length != 4) {
                continue;
            }
            ResourcePattern resource = new ResourcePattern(
                ResourceType.valueOf(f[0]), f[2], PatternType.valueOf(f[1]));
            AccessControlEntry entry = new AccessControlEntry(
                args[1], "*", AclOperation.valueOf(f[3]), AclPermissionType.ALLOW);
            acls.add(new AclBinding(resource, entry));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(acls).all().get();
        }
        System.out.println("granted " + acls.size() + " ACLs to " + args[1]);
    }
}
