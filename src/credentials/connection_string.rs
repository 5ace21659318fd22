//! A device's `CONNECTION_STR_PUB` (`HostName=..;DeviceId=..;SharedAccessKey=..`),
//! parsed and formatted in one place: the credential store writes it, the
//! device simulator and SAS helpers read it.

/// The IoT Hub API version devices name in their MQTT username.
pub const API_VERSION: &str = "2021-04-12";

/// `HostName=..;DeviceId=..;SharedAccessKey=..`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub host_name: String,
    pub device_id: String,
    pub shared_access_key: String,
}

impl ConnectionString {
    pub fn parse(s: &str) -> Result<ConnectionString, String> {
        let (mut host, mut id, mut key) = (None, None, None);
        for part in s.split(';').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("CONNECTION_STR_PUB: `{part}` is not Key=Value"));
            };
            match k.trim() {
                "HostName" => host = Some(v.trim().to_string()),
                "DeviceId" => id = Some(v.trim().to_string()),
                "SharedAccessKey" => key = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let need = |v: Option<String>, name: &str| {
            v.filter(|x| !x.is_empty())
                .ok_or_else(|| format!("CONNECTION_STR_PUB has no {name}=; expected HostName=..;DeviceId=..;SharedAccessKey=.."))
        };
        Ok(ConnectionString {
            host_name: need(host, "HostName")?,
            device_id: need(id, "DeviceId")?,
            shared_access_key: need(key, "SharedAccessKey")?,
        })
    }

    /// The IoT Hub username.
    pub fn username(&self) -> String {
        format!(
            "{}/{}/?api-version={API_VERSION}",
            self.host_name, self.device_id
        )
    }
}

impl std::fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HostName={};DeviceId={};SharedAccessKey={}",
            self.host_name, self.device_id, self.shared_access_key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let text = "HostName=hub.azure-devices.net;DeviceId=dev-1;SharedAccessKey=YWJj+/==";
        let c = ConnectionString::parse(text).unwrap();
        assert_eq!(c.to_string(), text);
        assert_eq!(
            c.username(),
            "hub.azure-devices.net/dev-1/?api-version=2021-04-12"
        );
        // order and spaces do not matter; unknown keys are ignored
        let c2 = ConnectionString::parse(
            " DeviceId=dev-1; SharedAccessKey=YWJj+/== ;HostName=hub.azure-devices.net;X=1",
        )
        .unwrap();
        assert_eq!(c2, c);
    }
}
