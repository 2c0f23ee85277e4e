//! The two EC2 Query responses natmeter reads, parsed without the network (docs/topology.md §2).
//!
//! EC2 answers in XML: lists are `<...Set>` of `<item>`s, and an error is
//! `<Response><Errors><Error><Code>..</Code><Message>..</Message></Error></Errors>`. Elements this
//! module does not know are skipped, so new fields (EC2 adds them often) never break it.

use std::net::IpAddr;

use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder, XmlDecodeError};
use ipnet::IpNet;

/// What went wrong reading a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("EC2 answered {code}: {message}")]
    Api { code: String, message: String },
    #[error("not an EC2 {expected} response: {problem}")]
    Shape {
        expected: &'static str,
        problem: String,
    },
}

/// `availabilityMode`: a zonal gateway lives in one subnet; a regional one has an address (and
/// an ENI) in each AZ it serves, and gains AZs by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AvailabilityMode {
    #[default]
    Zonal,
    Regional,
}

/// One entry of `natGatewayAddressSet`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub network_interface_id: Option<String>,
    pub private_ip: Option<IpAddr>,
    pub is_primary: Option<bool>,
    /// Regional gateways: the AZ this address (and its ENI) serves.
    pub availability_zone_id: Option<String>,
    pub availability_zone: Option<String>,
    /// `assigning`, `succeeded`, `failed`...
    pub status: Option<String>,
}

/// One entry of `natGatewaySet`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gateway {
    pub id: String,
    pub vpc_id: Option<String>,
    /// Zonal gateways only.
    pub subnet_id: Option<String>,
    /// `pending`, `available`, `deleting`, `deleted`, `failed`.
    pub state: Option<String>,
    /// `public` (the default) or `private`.
    pub connectivity_type: Option<String>,
    pub availability_mode: AvailabilityMode,
    pub addresses: Vec<Address>,
}

/// One entry of `subnetSet`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: Option<String>,
    pub availability_zone_id: Option<String>,
    pub cidrs: Vec<IpNet>,
}

/// One page of a paginated answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

fn shape(expected: &'static str) -> impl Fn(XmlDecodeError) -> ParseError {
    move |e| ParseError::Shape {
        expected,
        problem: e.to_string(),
    }
}

fn text(tag: &mut ScopedDecoder<'_, '_>) -> Result<String, XmlDecodeError> {
    Ok(try_data(tag)?.trim().to_string())
}

fn opt_text(tag: &mut ScopedDecoder<'_, '_>) -> Result<Option<String>, XmlDecodeError> {
    let t = text(tag)?;
    Ok((!t.is_empty()).then_some(t))
}

/// The `<Errors>` answer, if that is what `xml` is.
fn api_error(xml: &str) -> Option<ParseError> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().ok()?;
    if !root.start_el().matches("Response") {
        return None;
    }
    while let Some(mut errors) = root.next_tag() {
        if !errors.start_el().matches("Errors") {
            continue;
        }
        // The first <Error> is the one EC2 means.
        if let Some(mut error) = errors.next_tag() {
            let (mut code, mut message) = (String::new(), String::new());
            while let Some(mut t) = error.next_tag() {
                if t.start_el().matches("Code") {
                    code = text(&mut t).ok()?;
                } else if t.start_el().matches("Message") {
                    message = text(&mut t).ok()?;
                }
            }
            return Some(ParseError::Api { code, message });
        }
    }
    None
}

/// Walks `root`'s children: `set` names the list, `item` reads one entry of it.
fn page<T>(
    xml: &str,
    response: &'static str,
    set: &str,
    mut item: impl FnMut(&mut ScopedDecoder<'_, '_>) -> Result<T, XmlDecodeError>,
) -> Result<Page<T>, ParseError> {
    if let Some(e) = api_error(xml) {
        return Err(e);
    }
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().map_err(shape(response))?;
    if !root.start_el().matches(response) {
        return Err(ParseError::Shape {
            expected: response,
            problem: format!("the root element is <{}>", root.start_el().local()),
        });
    }
    let mut out = Page {
        items: Vec::new(),
        next_token: None,
    };
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().matches(set) {
            while let Some(mut it) = tag.next_tag() {
                if it.start_el().matches("item") {
                    out.items.push(item(&mut it).map_err(shape(response))?);
                }
            }
        } else if tag.start_el().matches("nextToken") {
            out.next_token = opt_text(&mut tag).map_err(shape(response))?;
        }
    }
    Ok(out)
}

fn ip(s: &str, what: &str) -> Result<IpAddr, XmlDecodeError> {
    s.parse()
        .map_err(|_| XmlDecodeError::custom(format!("{what} {s:?} is not an IP address")))
}

fn address(it: &mut ScopedDecoder<'_, '_>) -> Result<Address, XmlDecodeError> {
    let mut a = Address::default();
    while let Some(mut t) = it.next_tag() {
        let el = t.start_el().local().to_string();
        match el.as_str() {
            "networkInterfaceId" => a.network_interface_id = opt_text(&mut t)?,
            "privateIp" => {
                a.private_ip = match opt_text(&mut t)? {
                    Some(s) => Some(ip(&s, "privateIp")?),
                    None => None,
                }
            }
            "isPrimary" => a.is_primary = opt_text(&mut t)?.map(|s| s == "true"),
            "availabilityZoneId" => a.availability_zone_id = opt_text(&mut t)?,
            "availabilityZone" => a.availability_zone = opt_text(&mut t)?,
            "status" => a.status = opt_text(&mut t)?,
            _ => {}
        }
    }
    Ok(a)
}

fn gateway(it: &mut ScopedDecoder<'_, '_>) -> Result<Gateway, XmlDecodeError> {
    let mut g = Gateway::default();
    while let Some(mut t) = it.next_tag() {
        let el = t.start_el().local().to_string();
        match el.as_str() {
            "natGatewayId" => g.id = text(&mut t)?,
            "vpcId" => g.vpc_id = opt_text(&mut t)?,
            "subnetId" => g.subnet_id = opt_text(&mut t)?,
            "state" => g.state = opt_text(&mut t)?,
            "connectivityType" => g.connectivity_type = opt_text(&mut t)?,
            "availabilityMode" => {
                g.availability_mode = match opt_text(&mut t)?.as_deref() {
                    Some("regional") => AvailabilityMode::Regional,
                    _ => AvailabilityMode::Zonal,
                }
            }
            "natGatewayAddressSet" => {
                while let Some(mut a) = t.next_tag() {
                    if a.start_el().matches("item") {
                        g.addresses.push(address(&mut a)?);
                    }
                }
            }
            _ => {}
        }
    }
    if g.id.is_empty() {
        return Err(XmlDecodeError::custom(
            "a natGatewaySet item has no natGatewayId",
        ));
    }
    Ok(g)
}

fn subnet(it: &mut ScopedDecoder<'_, '_>) -> Result<Subnet, XmlDecodeError> {
    let mut s = Subnet::default();
    let net = |v: &str, what: &str| {
        v.parse::<IpNet>()
            .map_err(|_| XmlDecodeError::custom(format!("{what} {v:?} is not a CIDR")))
    };
    while let Some(mut t) = it.next_tag() {
        let el = t.start_el().local().to_string();
        match el.as_str() {
            "subnetId" => s.id = text(&mut t)?,
            "vpcId" => s.vpc_id = opt_text(&mut t)?,
            "availabilityZoneId" => s.availability_zone_id = opt_text(&mut t)?,
            "cidrBlock" => {
                if let Some(v) = opt_text(&mut t)? {
                    s.cidrs.push(net(&v, "cidrBlock")?);
                }
            }
            "ipv6CidrBlockAssociationSet" => {
                while let Some(mut a) = t.next_tag() {
                    if !a.start_el().matches("item") {
                        continue;
                    }
                    let (mut cidr, mut state) = (None, None);
                    while let Some(mut f) = a.next_tag() {
                        if f.start_el().matches("ipv6CidrBlock") {
                            cidr = opt_text(&mut f)?;
                        } else if f.start_el().matches("ipv6CidrBlockState") {
                            while let Some(mut st) = f.next_tag() {
                                if st.start_el().matches("state") {
                                    state = opt_text(&mut st)?;
                                }
                            }
                        }
                    }
                    // A disassociated block no longer belongs to the subnet.
                    if let (Some(c), None | Some("associated")) = (cidr, state.as_deref()) {
                        s.cidrs.push(net(&c, "ipv6CidrBlock")?);
                    }
                }
            }
            _ => {}
        }
    }
    if s.id.is_empty() {
        return Err(XmlDecodeError::custom("a subnetSet item has no subnetId"));
    }
    Ok(s)
}

/// Parses a `DescribeNatGatewaysResponse` (or EC2's error answer).
pub fn nat_gateways(xml: &str) -> Result<Page<Gateway>, ParseError> {
    page(xml, "DescribeNatGatewaysResponse", "natGatewaySet", gateway)
}

/// Parses a `DescribeSubnetsResponse` (or EC2's error answer).
pub fn subnets(xml: &str) -> Result<Page<Subnet>, ParseError> {
    page(xml, "DescribeSubnetsResponse", "subnetSet", subnet)
}
